"""model.weights: which sources exist, how they fail, and the preprocessing a run takes from them."""

import dataclasses
import socket

import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import save_file

from apps import run_app
from helpers import compose, new_store
from reference_resnet import random_state_dict
from runner.data import pipeline
from runner.mistakes.errors import UserError
from cards import tiny_card
from runner.weights import download, families, published
from runner.weights.card import model_inputs

TINY = ("model.input_shape=[64,64,3]", "data=synthetic", "data.num_classes=3", "data.train_size=8",
        "data.val_size=8", "trainer.batch_size=8", "trainer.epochs=1")


def runner(tmp_path, *overrides):
    store = new_store(tmp_path)
    return run_app("runner", f"hydra.run.dir={tmp_path}/run", *overrides, env={"MLFLOW_TRACKING_URI": store})


def no_runs(tmp_path) -> bool:
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    return not client.search_runs([e.experiment_id for e in client.search_experiments()])


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_model_without_published_weights_says_so_and_lists_those_with(tmp_path):
    line = one_line_error(runner(tmp_path, "model.weights=imagenet"))
    assert line == ("error: model.weights=imagenet: lenet has no published ImageNet weights; models that do: "
                    + ", ".join(published.published_weights()))
    assert no_runs(tmp_path)


@pytest.mark.e2e
def test_published_weights_offline_fail_in_one_line_before_any_run(tmp_path, monkeypatch):
    # A port nothing listens on: the download is refused at once, as on a machine without network.
    entry = dataclasses.replace(published.published("vgg16"), url="http://127.0.0.1:9/vgg16_weights.h5")
    monkeypatch.setitem(published.published_weights()["vgg16"], "keras", entry)
    line = one_line_error(runner(tmp_path, "model=vgg16", "model.weights=imagenet", *TINY))
    assert line.startswith("error: cannot download http://127.0.0.1:9/vgg16_weights.h5 (")
    assert line.endswith("download it by hand and pass model.weights=/path/to/vgg16_weights.h5")
    assert no_runs(tmp_path)


def test_the_hugging_face_hub_offline_fails_in_one_line(tmp_path):
    try:
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
        pytest.skip("this machine reaches huggingface.co")
    except OSError:
        pass
    line = one_line_error(runner(tmp_path, "model=resnet18", "model.weights=imagenet", *TINY))
    assert line.startswith("error: cannot download https://huggingface.co/timm/resnet18.tv_in1k/resolve/main/"
                           "model.safetensors (huggingface.co: ")
    assert line.endswith("pass model.weights=/path/to/model.safetensors")


@pytest.mark.e2e
def test_a_file_that_does_not_exist_or_fits_no_layout_is_one_line(tmp_path):
    line = one_line_error(runner(tmp_path, f"model.weights={tmp_path}/none.safetensors", *TINY))
    assert line.startswith(f"error: model.weights={tmp_path}/none.safetensors: no such file; give imagenet")
    path = tmp_path / "lenet.safetensors"
    save_file({"conv1.weight": np.zeros((6, 1, 5, 5), np.float32)}, str(path))
    line = one_line_error(runner(tmp_path, f"model.weights={path}", *TINY))
    assert line.startswith(f"error: model.weights={path}: no conversion from a .safetensors file to lenet; ")


@pytest.mark.e2e
def test_a_torchvision_file_trains_from_its_weights_with_its_preprocessing(tmp_path):
    import mlflow

    path = tmp_path / "resnet18.safetensors"
    save_file(random_state_dict(18), str(path))
    result = runner(tmp_path, "model=resnet18", f"model.weights={path}", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    params = run.data.params
    assert params["weights.layout"] == "torchvision_resnet"
    # synthetic's data file sets its own mean and std: they win over torchvision's, the channels stay RGB.
    assert (params["preprocessing.mean"], params["preprocessing.channels"]) == ("[0.5]", "RGB")
    text = open(client.download_artifacts(run.info.run_id, "weights.txt", str(tmp_path))).read()
    assert "left out of the source (the classifier: a new head): 2" in text  # fc: 1000 classes, not 3


def test_the_weights_preprocessing_applies_unless_the_data_sets_its_own(tmp_path):
    cfg = compose("model=vgg16", "data=imagenette")
    card = published.published("vgg16").card
    assert model_inputs(cfg.data, card) == families.CAFFE
    assert model_inputs(cfg.data, None) == pipeline.IMAGENET
    given = compose("data=imagenette", "data.mean=[0.5,0.5,0.5]", "data.std=[0.5,0.5,0.5]").data
    assert model_inputs(given, card) == pipeline.Preprocessing((0.5,) * 3, (0.5,) * 3, bgr=True)


def test_caffe_preprocessing_is_bgr_minus_the_mean_pixel():
    pixel = tf.constant([[[[200, 100, 50]]]], tf.uint8)
    normalised = pipeline.normaliser(families.CAFFE, 3)(pixel).numpy().ravel()
    np.testing.assert_allclose(normalised, [50 - 103.939, 100 - 116.779, 200 - 123.68], rtol=1e-5)


def test_offline_reachability_fails_fast_with_the_by_hand_hint():
    entry = dataclasses.replace(published.published("vgg19"), url="http://127.0.0.1:9/x/vgg19.h5")
    with pytest.raises(UserError, match=r"^cannot download http://127.0.0.1:9/x/vgg19.h5 \(.*pass "
                                        r"model.weights=/path/to/vgg19.h5$"):
        download.fetch(entry)



def test_a_saved_model_normalises_as_its_weights_say_and_reloads_without_custom_code(tmp_path):
    import keras

    from runner.weights import saved

    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Flatten(name="flatten")(keras.layers.Conv2D(4, 3, name="c1_conv")(inputs))
    network = keras.Model(inputs, keras.layers.Dense(3, name="fc")(x), name="tiny")
    images = np.random.default_rng(0).integers(0, 256, (2, 6, 6, 3)).astype(np.uint8)
    for inputs_were in (pipeline.IMAGENET, families.CAFFE):
        card = tiny_card(("a", "b", "c"), inputs_were)
        saved.save(tmp_path / "model.keras", network, card)
        reloaded = keras.saving.load_model(tmp_path / "model.keras")  # no custom_objects
        expected = tf.nn.softmax(network(pipeline.normaliser(inputs_were, 3)(images))).numpy()
        np.testing.assert_allclose(reloaded.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-6)
        assert saved.read_card(tmp_path / "model.keras") == card
        assert saved.network(reloaded).name == "tiny"
    assert [path.name for path in tmp_path.iterdir()] == ["model.keras"]  # no partial file left
