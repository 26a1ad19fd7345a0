"""A multirun is one MLflow parent run with a child per job; jobs and stores that fail lose nothing."""

import os
import subprocess
import sys
import gc
import textwrap
import types
import weakref

import mlflow
import pytest

import builders
from apps import run_app
from helpers import CONF, REPO, compose
from runner import sweep
from sweeps import (
    COMPARISON,
    QUICK,
    artifacts,
    assert_best_child_recorded,
    assert_finished_with_metrics,
    run_sweep,
    store,
    sweep_runs,
)


@pytest.mark.e2e
def test_basic_launcher_sweep_is_one_parent_with_a_child_per_job_and_a_comparison(tmp_path, monkeypatch):
    # Every model the sweep builds, watched through a weak reference: jobs sharing a process must free them.
    built_models, build = [], builders.build

    def watched_build(spec):
        built = build(spec)
        built_models.append(weakref.ref(built.model))
        return built

    monkeypatch.setattr(builders, "build", watched_build)
    result = run_sweep(tmp_path, "optimizer.lr=0.01,0.05", *QUICK)
    assert result.returncode == 0, result.stderr[-3000:]
    gc.collect()
    assert len(built_models) == 2 and not [model for model in built_models if model() is not None]
    client, parent, children = sweep_runs(tmp_path)
    assert parent.info.status == "FINISHED"
    assert len(children) == 2
    assert_finished_with_metrics(client, children)
    assert sorted(child.data.params["optimizer.lr"] for child in children) == ["0.01", "0.05"]
    assert parent.data.params["sweep.overrides"].startswith("optimizer.lr=0.01,0.05")
    assert parent.data.params["sweep.jobs"] == "2"
    assert_best_child_recorded(parent, children)
    assert COMPARISON <= artifacts(client, parent.info.run_id)
    assert COMPARISON <= {path.name for path in (tmp_path / "sweep").iterdir()}
    assert f"wrote {tmp_path / 'sweep' / 'comparison.md'}, " in result.stdout  # where to find them

    compare = run_app("runner.compare", f"hydra.run.dir={tmp_path}/compare", cwd=REPO,
                      env={"MLFLOW_TRACKING_URI": store(tmp_path)})
    assert compare.returncode == 0, compare.stderr[-3000:]
    assert all(child.info.run_id in compare.stdout for child in children)


@pytest.mark.e2e
def test_a_mistake_in_one_job_fails_that_job_in_one_line_and_ends_the_parent(tmp_path):
    # AlexNet's feature map collapses at 32 px; LeNet trains at that size.
    result = run_sweep(tmp_path, "model=lenet,alexnet", "model.input_shape=[32,32,3]", "data=synthetic",
                       "data.train_size=32", "data.val_size=16", "trainer.batch_size=16", "trainer.epochs=1",
                       "trainer.jit_compile=false", new_process=True)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "Error executing job with overrides: ['model=alexnet'" in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: job 1: model.blocks[5]")]
    assert len(errors) == 1 and "collapses" in errors[0]
    client, parent, children = sweep_runs(tmp_path)
    assert [child.data.tags["model"] for child in children] == ["lenet"]
    assert children[0].info.status == "FINISHED"
    assert parent.info.status == "FAILED" and "stopped early" in parent.data.tags["failure_reason"]


@pytest.mark.e2e
def test_concurrent_writers_on_a_fresh_sqlite_store_lose_nothing(tmp_path):
    """Three processes open a store that does not exist yet and log at once: every value arrives."""
    writer = textwrap.dedent(f"""
        import hydra
        from runner.config import schema
        schema.register()
        with hydra.initialize_config_dir({str(CONF)!r}, version_base="1.3"):
            cfg = hydra.compose("config", overrides=["tracking.uri={store(tmp_path)}",
                                                     "tracking.experiment=writers"])
        from runner.tracking.run import Run
        with Run(cfg) as run:
            for step in range(100):
                run.log_metrics({{"a": step, "b": -step}}, step=step)
    """)
    environment = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    writers = [subprocess.Popen([sys.executable, "-c", writer], cwd=REPO, env=environment, stderr=subprocess.PIPE,
                                text=True) for _ in range(3)]
    errors = [process.communicate(timeout=600)[1] for process in writers]
    assert [process.returncode for process in writers] == [0] * 3, errors[0][-3000:]
    client = mlflow.MlflowClient(store(tmp_path))
    runs = client.search_runs([client.get_experiment_by_name("writers").experiment_id])
    assert len(runs) == 3 and all(run.info.status == "FINISHED" for run in runs)
    for run in runs:
        for key in ("a", "b"):
            assert len(client.get_metric_history(run.info.run_id, key)) == 100


class RecordingClient:
    """What _record_outcome writes on the parent, instead of a store."""

    def __init__(self):
        self.metrics, self.tags = {}, {}

    def log_batch(self, run_id, params):
        pass

    def set_tag(self, run_id, key, value):
        self.tags[key] = value

    def log_metric(self, run_id, key, value):
        self.metrics[key] = value


@pytest.mark.parametrize("direction, best", [("maximize", "b"), ("minimize", "a")])
def test_the_parent_records_the_best_child_by_the_sweeps_objective_and_direction(direction, best):
    cfg = compose("sweep.objective=val_loss", f"sweep.direction={direction}")
    children = [types.SimpleNamespace(info=types.SimpleNamespace(status="FINISHED", run_id=name, run_name=name),
                                      data=types.SimpleNamespace(metrics={"val_loss": loss, "eval_top1": 0.5}, tags={}))
                for name, loss in (("a", 0.2), ("b", 0.9))]
    client = RecordingClient()
    sweep._record_outcome(client, "parent", children, True, cfg.sweep)
    assert client.tags["best_run_id"] == best
    assert client.metrics == {"best_val_loss": {"a": 0.2, "b": 0.9}[best]}


def test_a_sweep_parents_params_fit_mlflows_param_limit():
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
    from omegaconf import OmegaConf

    space = {f"model.key{i}": "choice(" + ",".join(map(str, range(40))) + ")" for i in range(60)}
    config = OmegaConf.create({"hydra": {
        "overrides": {"task": ["model=lenet"]}, "sweeper": {"_target_": "a.BasicSweeper", "params": space},
        "launcher": {"_target_": "a.BasicLauncher"}}})
    params = sweep._parent_params(config)
    assert len(params["sweep.space"]) == MAX_PARAM_VAL_LENGTH and params["sweep.space"].endswith("...")
    assert params["sweep.overrides"] == "model=lenet" and params["sweep.sweeper"] == "BasicSweeper"
