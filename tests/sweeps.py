"""Running `python -m runner -m ...` (in this process: tests/apps.py) against a store in tmp_path, and
reading its parent and children back."""

import os
import subprocess
import sys

import mlflow
import pytest

from apps import run_app
from helpers import REPO, new_store

# LeNet on digits; XLA off: compiling costs more than these few steps.
QUICK = ["trainer.epochs=1", "trainer.steps_per_epoch=4", "trainer.jit_compile=false"]
COMPARISON = {"comparison.png", "comparison.md", "comparison.csv"}


def run_sweep(tmp_path, *overrides, multirun=True, new_process=False):
    """The sweep in this process, or with `new_process` as a command of its own (when how the process
    ends is the point: a sweep that stops early ends its parent run from an atexit hook)."""
    arguments = [*(["-m"] if multirun else []), f"hydra.sweep.dir={tmp_path}/sweep", *overrides]
    if not new_process:
        return run_app("runner", *arguments, cwd=REPO, env={"MLFLOW_TRACKING_URI": store(tmp_path)})
    return subprocess.run([sys.executable, "-m", "runner", *arguments], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "MLFLOW_TRACKING_URI": store(tmp_path)}, timeout=900)


def store(tmp_path) -> str:
    return new_store(tmp_path)


def sweep_runs(tmp_path):
    """The one parent run in the store, its children, and a client on the store."""
    client = mlflow.MlflowClient(store(tmp_path))
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    parents = [run for run in runs if run.data.tags.get("runner.role") == "sweep"]
    assert len(parents) == 1, [run.info.run_name for run in runs]
    parent = parents[0]
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == len(runs) - 1, "every run but the parent is its child"
    return client, parent, children


def assert_finished_with_metrics(client, children, epochs=1):
    for child in children:
        assert child.info.status == "FINISHED", child.data.tags.get("failure_reason")
        assert {"eval_top1", "eval_top5", "parameters", "gmacs"} <= set(child.data.metrics)
        assert len(client.get_metric_history(child.info.run_id, "val_top1")) == epochs


def assert_best_child_recorded(parent, children):
    best = max(children, key=lambda child: child.data.metrics["eval_top1"])
    assert parent.data.tags["best_run_id"] == best.info.run_id
    assert parent.data.metrics["best_eval_top1"] == pytest.approx(best.data.metrics["eval_top1"])


def artifacts(client, run_id) -> set[str]:
    return {artifact.path for artifact in client.list_artifacts(run_id)}
