"""`python -m runner.export`: each format agrees with the Keras model it came from, LRN, padded pools
and GoogLeNet's auxiliary heads included (the heads are training's: the export leaves them out)."""

import numpy as np
import pytest

from apps import run_app
from cards import tiny_card
from runner.data.pipeline import IMAGENET
from runner.weights import saved

import builders

# LRN, a -inf padded max pool and an auxiliary classifier, at a size that exports in seconds.
SPEC = {"name": "small", "input_shape": [16, 16, 3], "aux_loss_weight": 0.3, "blocks": [
    {"type": "conv", "filters": 8, "kernel_size": 3, "padding": 1, "name": "conv1"},
    {"type": "lrn", "depth_radius": 2, "bias": 2.0, "alpha": 1e-4, "beta": 0.75, "name": "norm1"},
    {"type": "maxpool", "pool_size": 3, "strides": 2, "padding": 1, "name": "pool1"},
    {"type": "aux_classifier", "units": 3, "pool_size": 5, "strides": 3, "filters": 4, "hidden_units": 8,
     "name": "aux1"},
    {"type": "conv", "filters": 8, "kernel_size": 3, "padding": 1, "name": "conv2"},
    {"type": "global_avgpool", "name": "pool2"},
    {"type": "dense", "units": 3, "name": "fc"},
]}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "model.keras"
    saved.save(path, builders.build_model(SPEC), tiny_card(("a", "b", "c"), IMAGENET))
    return path


@pytest.mark.parametrize("fmt, name", [("saved_model", "saved_model"), ("tflite", "model.tflite"),
                                       ("onnx", "model.onnx")])
def test_each_format_agrees_with_keras(model_file, tmp_path, fmt, name):
    result = run_app("runner.export", f"hydra.run.dir={tmp_path}/run", f"export.model={model_file}",
                     f"export.format={fmt}", f"export.output={tmp_path / 'out'}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"wrote {tmp_path / 'out' / name}: largest difference from Keras" in result.stdout
    assert [path.name for path in (tmp_path / "out").iterdir()] == [name]  # no partial export left


def test_an_export_that_disagrees_is_refused_and_leaves_nothing(model_file, tmp_path):
    result = run_app("runner.export", f"hydra.run.dir={tmp_path}/run", f"export.model={model_file}",
                     "export.format=saved_model", f"export.output={tmp_path / 'out'}", "export.tolerance=-1")
    assert result.returncode == 2
    assert "error: export.format=saved_model: the export differs from the Keras model by" in result.stderr
    assert not list((tmp_path / "out").iterdir())


def test_a_model_that_is_not_there_is_one_line(tmp_path):
    result = run_app("runner.export", f"hydra.run.dir={tmp_path}/run", f"export.model={tmp_path}/none.keras")
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: export.model={tmp_path}/none.keras: no such file; give "
                                     "runs:/<run_id> or a model.keras file")


def test_the_float32_copy_computes_what_the_model_does(model_file):
    import keras

    model = keras.saving.load_model(model_file)
    images = np.random.default_rng(1).integers(0, 256, (2, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(saved.float32_copy(model).predict(images, verbose=0),
                               model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)


def test_the_output_is_checked_before_any_work_and_an_export_is_replaced_only_when_asked(model_file, tmp_path):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "out" / "model.tflite").parent.mkdir()
    (tmp_path / "out" / "model.tflite").write_bytes(b"an earlier export")
    arguments = (f"hydra.run.dir={tmp_path}/run", f"export.model={model_file}", "export.format=tflite")
    said = {}
    for name, output in (("file", tmp_path / "a_file"), ("there", tmp_path / "out")):
        result = run_app("runner.export", *arguments, f"export.output={output}")
        assert result.returncode == 2
        [said[name]] = result.stderr.strip().splitlines()
    assert said["file"] == (f"error: export.output={tmp_path / 'a_file'} is a file; give the folder that receives "
                            "model.tflite")
    assert said["there"] == (f"error: export.output={tmp_path / 'out'} already holds model.tflite; pass "
                             "export.overwrite=true to replace it, or give another folder")
    assert (tmp_path / "out" / "model.tflite").read_bytes() == b"an earlier export"
    result = run_app("runner.export", *arguments, f"export.output={tmp_path / 'out'}", "export.overwrite=true")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "out" / "model.tflite").read_bytes() != b"an earlier export"
