"""`python -m runner.export`: each format agrees with the Keras model it came from, LRN, padded pools
and GoogLeNet's auxiliary heads included (the heads are training's: the export leaves them out)."""

import logging
import re
import subprocess
import warnings

import numpy as np
import pytest

from apps import run_app
from cards import tiny_card
from helpers import REPO
from runner.data.pipeline import IMAGENET
from runner.shell.logs import quiet_libraries
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


@pytest.mark.e2e
@pytest.mark.parametrize("fmt, name", [("saved_model", "saved_model"), ("tflite", "model.tflite"),
                                       ("onnx", "model.onnx")])
def test_each_format_agrees_with_keras_and_says_only_that(model_file, tmp_path, capfd, fmt, name):
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()  # Python's own defaults, under which a command runs
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)
        result = run_app("runner.export", f"hydra.run.dir={tmp_path}/run", f"export.model={model_file}",
                         f"export.format={fmt}", f"export.output={tmp_path / 'out'}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"wrote {tmp_path / 'out' / name}: largest difference from Keras" in result.stdout
    assert [path.name for path in (tmp_path / "out").iterdir()] == [name]  # no partial export left
    # Its own line alone: no library's deprecation note, INFO or WARNING line (the C++ ones included:
    # TFLite says "INFO: Created TensorFlow Lite XNNPACK delegate" the first time an interpreter allocates).
    native = capfd.readouterr()
    said = [result.stdout, result.stderr, native.out, native.err,
            *(f"{warning.category.__name__}: {warning.message}" for warning in caught)]  # as Python prints them
    noise = [line for text in said for line in text.splitlines() if re.search("WARNING|INFO:|deprecat", line, re.I)]
    assert noise == []


def test_tensorflows_deprecation_notes_are_held_back_and_its_warnings_are_not(caplog):
    """tf2onnx and the converters call TensorFlow functions it has deprecated, which it says at WARNING."""
    quiet_libraries()
    tensorflow = logging.getLogger("tensorflow")
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        tensorflow.warning("From tf_loader.py:1: extract_sub_graph (from graph_util_impl) is deprecated and will be "
                           "removed in a future version.")
        tensorflow.warning("something the user should know")
    assert [record.getMessage() for record in caplog.records] == ["something the user should know"]


@pytest.mark.e2e
def test_an_export_that_disagrees_is_refused_and_leaves_nothing(model_file, tmp_path):
    result = run_app("runner.export", f"hydra.run.dir={tmp_path}/run", f"export.model={model_file}",
                     "export.format=saved_model", f"export.output={tmp_path / 'out'}", "export.tolerance=-1")
    assert result.returncode == 2
    assert "error: export.format=saved_model: the export differs from the Keras model by" in result.stderr
    assert not list((tmp_path / "out").iterdir())


@pytest.mark.e2e
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


@pytest.mark.e2e
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


def test_the_folders_the_documented_exports_write_are_git_ignored():
    """A user who runs the README's or the docs' export examples in a checkout sees no untracked export."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    outputs = {match for page in pages for match in re.findall(r"export\.output=([\w./~-]+)", page.read_text())}
    outputs -= {"DIR"}  # the placeholder of the command's synopsis
    assert "exported/" in outputs
    for output in sorted(outputs):
        ignored = subprocess.run(["git", "check-ignore", "--no-index", "-q", f"{output.rstrip('/')}/model.tflite"],
                                 cwd=REPO)
        assert ignored.returncode == 0, f"export.output={output} (in the docs) is not git-ignored"
