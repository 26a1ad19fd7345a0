"""BVLC's Caffe AlexNet and GoogLeNet (model.weights=imagenet for alexnet_grouped and googlenet): files
in Caffe's 2014 layout with random weights under BVLC's names (tests/caffe_files.py) load into the zoo's
paper-faithful models, which then compute what Caffe computes of those weights: the independent
reference written from BVLC's prototxts (tests/reference_caffe.py), Caffe's LRN included."""

import dataclasses
import hashlib
import json

import mlflow
import numpy as np
import pytest
import tensorflow as tf

from apps import run_app
from caffe_files import write_caffemodel
from helpers import compose, new_store
from image_folders import make_image_folder
from reference_caffe import (ALEXNET_MEAN_BGR, GOOGLENET_MEAN_BGR, alexnet_forward, alexnet_shapes, googlenet_forward,
                             googlenet_shapes, random_blobs)
from runner.data.cache_home import cache_home
from runner.mistakes.errors import UserError
from runner.session.stand_alone import from_weights
from runner.weights import reference
from runner.weights import published

pytestmark = pytest.mark.e2e  # every test here: BVLC's full-size originals, built, run and fine-tuned

SMALL_ALEXNET = 99  # conv1 11x11/4 gives 23, the pools 11, 5 and 2: fc6 reads 2x2x256


def caffe_inputs(images: np.ndarray, mean_bgr: tuple[float, float, float]) -> np.ndarray:
    """What Caffe takes of 0-255 RGB images: BGR, 0-255, the mean pixel subtracted (the reference's
    constants, not the project's, so a wrong mean or channel order in its cards would show)."""
    return images[..., ::-1] - np.asarray(mean_bgr, np.float32)


def relative_error(ours, expected) -> float:
    return float(np.max(np.abs(np.asarray(ours) - expected)) / np.max(np.abs(expected)))


def images(size: int, count: int = 2) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (count, size, size, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory):
    blobs = random_blobs(alexnet_shapes(), seed=0)
    path = tmp_path_factory.mktemp("bvlc") / "bvlc_alexnet.caffemodel"
    write_caffemodel(path, blobs)  # the 2014 layout: V1 layers, legacy blob dimensions
    return path, blobs


@pytest.fixture(scope="module")
def googlenet_file(tmp_path_factory):
    blobs = random_blobs(googlenet_shapes(), seed=0)
    path = tmp_path_factory.mktemp("bvlc") / "bvlc_googlenet.caffemodel"
    write_caffemodel(path, blobs)
    return path, blobs


def loaded_beside_caffe(model: str, path, size: int, mean_bgr):
    """The config of `model` with the file as weights, the model it loads, RGB pictures and what Caffe
    takes of them."""
    cfg = compose(f"model={model}", f"model.weights={path}")
    pictures = images(size)
    return cfg, from_weights(cfg), pictures, caffe_inputs(pictures, mean_bgr)


def test_bvlc_alexnet_computes_caffes_function_and_not_with_the_papers_lrn(alexnet_file, monkeypatch):
    path, blobs = alexnet_file
    cfg, loaded, pictures, caffe = loaded_beside_caffe("alexnet_grouped", path, 227, ALEXNET_MEAN_BGR)
    expected = alexnet_forward(blobs, caffe)
    assert relative_error(loaded.part.model(caffe), expected) < 1e-4
    np.testing.assert_allclose(loaded.model.predict(pictures, verbose=0), tf.nn.softmax(expected), atol=1e-5)
    assert dict(loaded.card.lrn) == {"depth_radius": 2, "bias": 1.0, "alpha": 2e-5, "beta": 0.75}
    # The same weights under the paper's LRN (k=2, alpha undivided), which the zoo's file builds: far off.
    monkeypatch.setattr(reference, "with_lrn", lambda cfg, constants: cfg)
    assert relative_error(from_weights(cfg).part.model(caffe), expected) > 1e-2


def test_bvlc_googlenet_computes_caffes_function_auxiliary_heads_included(googlenet_file, monkeypatch):
    path, blobs = googlenet_file
    cfg, loaded, pictures, caffe = loaded_beside_caffe("googlenet", path, 224, GOOGLENET_MEAN_BGR)
    expected = googlenet_forward(blobs, caffe)
    main, aux1, aux2 = loaded.part.model(caffe)
    for ours, name in ((main, "loss3"), (aux1, "loss1"), (aux2, "loss2")):
        assert relative_error(ours, expected[f"{name}/classifier"]) < 1e-4, name
    np.testing.assert_allclose(loaded.model.predict(pictures, verbose=0), tf.nn.softmax(expected["loss3/classifier"]),
                               atol=1e-5)
    assert loaded.card.classifier == ("classifier", "aux1", "aux2")
    monkeypatch.setattr(reference, "with_lrn", lambda cfg, constants: cfg)  # the paper's LRN: far off
    assert relative_error(from_weights(cfg).part.model(caffe)[0], expected["loss3/classifier"]) > 1e-2


def test_without_auxiliary_heads_bvlc_googlenet_is_one_line(googlenet_file):
    path, _ = googlenet_file
    with pytest.raises(UserError, match=r"their auxiliary heads \(aux1, aux2\) have no rows in model googlenet, "
                                        r"which model.aux_loss_weight=0 leaves out: keep it above 0"):
        from_weights(compose("model=googlenet", f"model.weights={path}", "model.aux_loss_weight=0"))


@pytest.mark.e2e
@pytest.mark.parametrize("model, fixture, inputs, forward", [
    ("alexnet_grouped", "alexnet_file", ALEXNET_MEAN_BGR, lambda blobs, x: alexnet_forward(blobs, x)),
    ("googlenet", "googlenet_file", GOOGLENET_MEAN_BGR,
     lambda blobs, x: googlenet_forward(blobs, x)["loss3/classifier"]),
])
def test_the_export_of_either_original_gives_caffes_probabilities(model, fixture, inputs, forward, request,
                                                                  tmp_path):
    path, blobs = request.getfixturevalue(fixture)
    size = 227 if model == "alexnet_grouped" else 224
    result = run_app("runner.export", f"model={model}", f"model.weights={path}", "export.format=saved_model",
                     f"export.output={tmp_path / 'exported'}", "export.check_images=2", f"hydra.run.dir={tmp_path}/e")
    assert result.returncode == 0, result.stderr[-3000:]
    pictures = images(size)
    saved_model = tf.saved_model.load(str(tmp_path / "exported" / "saved_model"))  # held: it owns the variables
    expected = tf.nn.softmax(forward(blobs, caffe_inputs(pictures, inputs)))
    np.testing.assert_allclose(saved_model.serve(pictures).numpy(), expected, atol=1e-5)


@pytest.fixture
def small_alexnet(tmp_path):
    """BVLC's AlexNet at a 99-pixel input (its fc6 reads a 2x2 map): a file cheap to train from."""
    path = tmp_path / "bvlc_alexnet.caffemodel"
    write_caffemodel(path, random_blobs(alexnet_shapes(size=SMALL_ALEXNET), seed=2))
    return path


def test_fine_tuning_from_bvlc_alexnet_keeps_caffes_lrn_in_what_it_saves(small_alexnet, tmp_path):
    store = new_store(tmp_path)
    result = run_app("runner", "model=alexnet_grouped", f"model.input_shape=[{SMALL_ALEXNET},{SMALL_ALEXNET},3]",
                     f"model.weights={small_alexnet}", "data=synthetic", "data.num_classes=3", "data.train_size=8",
                     "data.val_size=4", "trainer.batch_size=4", "trainer.epochs=1", "trainer.jit_compile=false",
                     f"hydra.run.dir={tmp_path}/run", env={"MLFLOW_TRACKING_URI": store})
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.MlflowClient(store)
    [run] = client.search_runs([experiment.experiment_id for experiment in client.search_experiments()])
    params = run.data.params
    assert (params["weights.layout"], params["preprocessing.channels"]) == ("caffe_alexnet", "BGR")
    assert json.loads(params["weights.lrn"]) == {"alpha": 2e-5, "beta": 0.75, "bias": 1.0, "depth_radius": 2}
    text = open(client.download_artifacts(run.info.run_id, "weights.txt", str(tmp_path))).read()
    assert "lrn rows take: depth_radius 2, bias 1, alpha 2e-05, beta 0.75" in text
    assert "left out of the source (the classifier: a new head): 2" in text  # fc8: 1000 classes, not 3
    # The run's own file, given as weights, builds its LRN rows with Caffe's constants again.
    again = from_weights(compose("model=alexnet_grouped", f"model.input_shape=[{SMALL_ALEXNET},{SMALL_ALEXNET},3]",
                                 f"model.weights={tmp_path / 'run' / 'model.keras'}"))
    norm1 = again.part.model.get_layer("norm1")
    assert (norm1.bias, norm1.alpha) == (1.0, pytest.approx(2e-5))


def test_published_originals_come_from_keras_cache_checked_against_bvlcs_sha1(small_alexnet, tmp_path,
                                                                               monkeypatch):
    """model.weights=imagenet finds the file where keras.utils.get_file left it; a file whose sha1 is not
    BVLC's is refused in one line and removed, so the next run downloads it again."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cached = cache_home() / "weights" / "bvlc_alexnet.caffemodel"
    cached.parent.mkdir(parents=True)
    root = make_image_folder(tmp_path / "imagenette", per_class=1, size=(110, 120))
    evaluate = ("runner.evaluate", "model=alexnet_grouped", f"model.input_shape=[{SMALL_ALEXNET},{SMALL_ALEXNET},3]",
                "model.weights=imagenet", "data=imagenette", f"data.root={root}", "trainer.batch_size=4",
                f"hydra.run.dir={tmp_path}/run")
    cached.write_bytes(small_alexnet.read_bytes())
    result = run_app(*evaluate, env={"MLFLOW_TRACKING_URI": new_store(tmp_path / "refused")})
    assert result.returncode == 2 and not cached.exists()
    assert result.stderr.startswith(f"error: cannot download {published.BVLC}/bvlc_alexnet.caffemodel (")
    assert result.stderr.strip().endswith("pass model.weights=/path/to/bvlc_alexnet.caffemodel")
    cached.write_bytes(small_alexnet.read_bytes())
    entry = published.published("alexnet_grouped")
    sha1 = hashlib.sha1(cached.read_bytes()).hexdigest()
    monkeypatch.setitem(published.published_weights()["alexnet_grouped"], "bvlc", dataclasses.replace(entry, sha1=sha1))
    store = new_store(tmp_path)
    result = run_app(*evaluate, env={"MLFLOW_TRACKING_URI": store})
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.MlflowClient(store)
    [run] = client.search_runs([experiment.experiment_id for experiment in client.search_experiments()])
    assert run.data.metrics["published_top1"] == pytest.approx(0.571)
    assert float(run.data.params["resolved.eval_resize_ratio"]) == pytest.approx(256 / 227)  # the card's crop


@pytest.mark.parametrize("model, file", [("alexnet_grouped", "bvlc_alexnet"), ("googlenet", "bvlc_googlenet")])
def test_the_originals_offline_are_one_line_before_any_run(model, file, tmp_path, monkeypatch):
    entry = published.published(model)
    # A port nothing listens on: the download is refused at once, as on a machine without network.
    offline = dataclasses.replace(entry, url=f"http://127.0.0.1:9/{file}.caffemodel")
    monkeypatch.setitem(published.published_weights()[model], "bvlc", offline)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = run_app("runner.export", f"model={model}", "model.weights=imagenet", f"export.output={tmp_path}/out",
                     f"hydra.run.dir={tmp_path}/run")
    assert result.returncode == 2 and not (tmp_path / "out").exists()
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot download http://127.0.0.1:9/{file}.caffemodel (")
    assert line.endswith(f"download it by hand and pass model.weights=/path/to/{file}.caffemodel")
