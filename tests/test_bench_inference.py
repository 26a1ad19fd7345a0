"""`python -m runner.bench "bench.stages=[infer]"`: LeNet on digits in Keras and its three exports, each
row checked for being there, positive and agreeing with Keras (never for a speed); the JSON section
and the MLflow metrics; ONNX missing costs its row only; a wrong stage name lists infer."""

import json
import pathlib
import sys

import mlflow
import pytest

from apps import SHELL_UNSET, run_app
from helpers import new_store
from runner.bench.inference_rows import FORMATS, TIMED

pytestmark = pytest.mark.e2e  # every test here: the whole bench app, exporting and timing every format

TINY = ("model=lenet", "data=digits", "bench.stages=[infer]", "bench.infer_batch=4", "bench.infer_warmup=1",
        "bench.infer_batches=2", "bench.latency_runs=3")


def bench(tmp_path: pathlib.Path, *overrides: str):
    output = tmp_path / "bench.json"
    done = run_app("runner.bench", f"bench.output={output}", *TINY, *overrides, cwd=tmp_path, env=SHELL_UNSET)
    assert done.returncode == 0, done.stderr[-3000:]
    return done, json.loads(output.read_text())["inference"]


def test_every_format_is_timed_agrees_with_keras_and_is_recorded(tmp_path):
    uri = new_store(tmp_path / "store")
    done, inference = bench(tmp_path, "bench.log_mlflow=true", f"tracking.uri={uri}")
    assert list(inference) == list(FORMATS)
    for name, row in inference.items():
        assert row["reason"] is None and row["batch"] == 4, (name, row)
        assert all(row[figure] > 0 for figure in TIMED), (name, row)
        assert row["latency_ms_p99"] >= row["latency_ms_median"], (name, row)
    assert inference["keras"]["max_difference"] is None  # the reference
    assert all(0 <= inference[name]["max_difference"] < 1e-4 for name in ("saved_model", "tflite", "onnx"))
    assert inference["tflite"]["threads"] >= 1
    for label in FORMATS.values():
        assert label in done.stdout
    assert "float32 in every format" in done.stdout

    client = mlflow.MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("bench").experiment_id])
    for name in FORMATS:
        for figure in TIMED:
            assert run.data.metrics[f"infer_{name}_{figure}"] == pytest.approx(inference[name][figure])


def test_without_onnxruntime_the_onnx_row_says_why_and_the_others_run(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    done, inference = bench(tmp_path)
    assert inference["onnx"]["reason"] == ("not measured: needs tf2onnx and onnxruntime "
                                           "(pip install -e '.[onnx]')")
    assert inference["onnx"]["images_per_second"] is None
    assert all(inference[name]["images_per_second"] > 0 for name in ("keras", "saved_model", "tflite"))
    assert "needs tf2onnx and onnxruntime" in done.stdout


def test_an_unknown_stage_lists_infer_among_the_valid_names(tmp_path):
    done = run_app("runner.bench", "bench.stages=[infer,warp]", cwd=tmp_path, env=SHELL_UNSET)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: bench.stages: unknown stage 'warp'; valid: ") and line.endswith(", infer"), line
