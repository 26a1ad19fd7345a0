"""MLflow tracking against a real sqlite store in tmp_path: what a run records and how it ends."""

import contextlib
import os
import pathlib
import signal
import sys

import hydra
import mlflow
import numpy as np
import pytest
from hydra.core.hydra_config import HydraConfig
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

from helpers import CONF, compose
from runner.mistakes.errors import UserError
from runner.signals import Stopped, interrupt
from runner.tracking.dashboard import how_to_open
from runner.tracking.run import Run
from runner.tracking.store import store_in, store_uri
from runner.training.record import artifacts_location
from runner.training.stops import DeferredStops, Trap, stop_if_requested


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory) -> pathlib.Path:
    """Where the jobs run. Its default store serves the whole module: a new store costs seconds of migrations,
    and each test reads back only its own run."""
    return tmp_path_factory.mktemp("project")


@pytest.fixture
def store(project_dir, monkeypatch) -> str:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{project_dir / 'outputs' / 'mlflow.db'}"


@pytest.fixture
def client(store) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(store)


def artifact_paths(client, run_id: str) -> set[str]:
    return {artifact.path for artifact in client.list_artifacts(run_id)}


def test_store_uri_precedence_env_then_config_then_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert store_uri(compose()) == f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"
    assert (tmp_path / "outputs").is_dir()
    assert store_in(tmp_path / "bench") == f"sqlite:///{tmp_path / 'bench' / 'mlflow.db'}"  # the bench's throwaway

    configured = compose("tracking.uri=sqlite:///configured.db")
    assert store_uri(configured) == "sqlite:///configured.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert store_uri(configured) == "http://tracking.example:5000"


def test_default_store_keeps_artifacts_under_outputs(project_dir, client, monkeypatch):
    monkeypatch.chdir(project_dir)
    with Run(compose()) as run:
        pass
    artifact_uri = client.get_run(run.run_id).info.artifact_uri  # the client reads the store under outputs/
    assert artifact_uri.startswith((project_dir / "outputs" / "mlartifacts").as_uri())
    assert not (project_dir / "mlruns").exists()


def test_a_run_names_its_artifacts_folder_on_disk_else_their_uri(project_dir, client, monkeypatch):
    monkeypatch.chdir(project_dir)
    with Run(compose()) as run:
        run.log_text("logged", "note.txt")
    folder = pathlib.Path(artifacts_location(client, run.run_id))
    assert (folder / "note.txt").read_text() == "logged"
    assert folder.is_relative_to(project_dir / "outputs" / "mlartifacts")
    remote = client.create_experiment("remote", artifact_location="s3://bucket/remote")
    remote_run = client.create_run(remote).info.run_id
    assert artifacts_location(client, remote_run) == f"s3://bucket/remote/{remote_run}/artifacts"


def test_a_run_leaves_the_tracking_uri_variable_as_it_found_it(store, monkeypatch):
    """MLflow exports the URI it is given; left set, it would outrank the next job's tracking.uri."""
    with Run(compose(f"tracking.uri={store}")):
        pass
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_run_records_config_tags_metrics_and_artifacts(store, client, tmp_path):
    model_file = tmp_path / "model.keras"
    model_file.write_bytes(b"weights")
    history = {"loss": [1.2, 0.8, 0.5], "top1": [0.3, 0.6, 0.8],
               "val_loss": [1.3, 0.9, 0.7], "val_top1": [0.2, 0.5, 0.7]}
    cfg = compose("model=resnet18", "model.input_shape=[64,64,3]", "optimizer.lr=0.125", "trainer.strategy=mirrored",
                  f"tracking.uri={store}")
    with Run(cfg) as run:
        run.log_params({"replicas": 2, "note": "x" * (MAX_PARAM_VAL_LENGTH + 10)})
        for epoch in range(3):
            run.log_metrics({"loss": history["loss"][epoch], "top5": None}, step=epoch)
        run.log_text("## resnet18\n", "architecture.md")
        run.log_curves(history)
        run.log_confusion_matrix(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 2]), ["a", "b", "c"])
        run.log_artifact(model_file)

    recorded = client.get_run(run.run_id)
    assert recorded.info.status == "FINISHED"
    assert recorded.info.run_name.startswith("resnet18-digits-")
    assert client.get_experiment(recorded.info.experiment_id).name == "digits"

    params = recorded.data.params
    assert params["optimizer.lr"] == "0.125"
    assert params["model.input_shape"] == "[64, 64, 3]"
    assert params["data.num_classes"] == "10"
    assert params["trainer.strategy"] == "mirrored"  # the enum's value, not Strategy.mirrored
    assert params["replicas"] == "2"
    assert params["model.blocks"] == "1 conv, 1 maxpool, 8 basic, 1 global_avgpool, 1 dense"
    assert not any(key.startswith("model.blocks.") for key in params)
    assert len(params["note"]) == MAX_PARAM_VAL_LENGTH

    tags = recorded.data.tags
    assert (tags["model"], tags["data"]) == ("resnet18", "digits")
    assert len(tags["git_commit"]) == 40
    assert tags["command"] == " ".join(sys.argv)  # the command line of the process that ran

    loss = client.get_metric_history(run.run_id, "loss")
    assert [(point.step, point.value) for point in loss] == [(0, 1.2), (1, 0.8), (2, 0.5)]
    assert client.get_metric_history(run.run_id, "top5") == []

    assert artifact_paths(client, run.run_id) == {
        "config.yaml", "architecture.md", "curves.png", "confusion_matrix.png", "model.keras",
        "per_class.csv", "per_class.json", "confused_pairs.csv", "confused_pairs.json",
    }
    config_yaml = pathlib.Path(client.download_artifacts(run.run_id, "config.yaml", str(tmp_path))).read_text()
    assert "name: resnet18" in config_yaml and "units: 10" in config_yaml  # interpolations resolved
    curves = pathlib.Path(client.download_artifacts(run.run_id, "curves.png", str(tmp_path))).read_bytes()
    assert curves.startswith(b"\x89PNG")


def test_experiment_and_run_name_come_from_the_config(store, client):
    with Run(compose(f"tracking.uri={store}", "tracking.experiment=ablation", "tracking.run_name=first")) as run:
        pass
    recorded = client.get_run(run.run_id)
    assert recorded.info.run_name == "first"
    assert client.get_experiment(recorded.info.experiment_id).name == "ablation"


def test_a_deleted_experiment_is_a_user_error(store, client):
    client.delete_experiment(client.create_experiment("deleted"))
    with pytest.raises(UserError, match="experiments restore"):
        with Run(compose(f"tracking.uri={store}", "tracking.experiment=deleted")):
            pass


@pytest.mark.parametrize(
    "error, status, failure_reason",
    [
        (None, "FINISHED", None),
        (RuntimeError("disk full\nsecond line"), "FAILED", "RuntimeError: disk full"),
        (SystemExit(2), "FAILED", "SystemExit: 2"),
        (SystemExit(0), "FINISHED", None),
        (KeyboardInterrupt(), "KILLED", None),
    ],
)
def test_run_ends_with_a_status_and_never_swallows_the_error(store, client, error, status, failure_reason):
    with pytest.raises(type(error)) if error else contextlib.nullcontext():
        with Run(compose(f"tracking.uri={store}")) as run:
            if error:
                raise error
    recorded = client.get_run(run.run_id)
    assert recorded.info.status == status
    assert recorded.data.tags.get("failure_reason") == failure_reason
    assert mlflow.active_run() is None  # the next Run in this process can start


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_the_run_killed_at_the_next_check_and_restores_the_handler(store, client, signum):
    # Our own handler first, so a run that forgot to trap the signal fails the test instead of killing pytest.
    caught = []
    previous = signal.signal(signum, lambda number, frame: caught.append(number))
    try:
        with pytest.raises(Stopped) as stopped:
            with DeferredStops(), Run(compose(f"tracking.uri={store}")) as run:  # as train() holds them
                signal.raise_signal(signum)  # noted, not raised mid-library
                stop_if_requested()  # where the epoch loop checks, after every step
        assert (stopped.value.signal, stopped.value.exit_code) == (signum, 128 + signum)
        assert client.get_run(run.run_id).info.status == "KILLED"
        assert not caught
        signal.raise_signal(signum)
        assert caught == [signum]  # the handler from before the run is back
    finally:
        signal.signal(signum, previous)


def test_a_sweep_between_jobs_turns_sigterm_into_keyboard_interrupt_and_restores_the_handler():
    caught = []
    previous = signal.signal(signal.SIGTERM, lambda number, frame: caught.append(number))
    trap = Trap(interrupt, (signal.SIGTERM,))  # what SweepRun holds from the sweep's start to its end
    try:
        trap.start()
        with pytest.raises(Stopped, match="signal SIGTERM"):
            signal.raise_signal(signal.SIGTERM)
        trap.end()
        signal.raise_signal(signal.SIGTERM)
        assert caught == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_second_ctrl_c_stops_at_once(store, client):
    with pytest.raises(Stopped):
        with DeferredStops(), Run(compose(f"tracking.uri={store}")) as run:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)  # raises here, before any check
            pytest.fail("the second Ctrl-C waited for a step boundary")
    assert client.get_run(run.run_id).info.status == "KILLED"


def test_the_recorder_hook_logs_an_epochs_numbers_at_its_step(store, client):
    epochs = [{"loss": 1.5, "val_top1": 0.25, "lr": 0.1, "learning_rate": 0.01, "stopped": True},
              {"loss": 1.25, "val_top1": 0.5, "lr": 0.01, "learning_rate": 0.001, "stopped": False}]
    with Run(compose(f"tracking.uri={store}")) as run:
        for epoch, logs in enumerate(epochs):
            run.log_epoch(epoch, logs)
    for name in ("loss", "val_top1", "lr"):
        logged = client.get_metric_history(run.run_id, name)
        assert [point.step for point in logged] == [0, 1]
        assert [point.value for point in logged] == pytest.approx([logs[name] for logs in epochs])
    # ReduceLROnPlateau's next-epoch rate and booleans are not the epoch's metrics.
    assert not {"learning_rate", "stopped"} & set(client.get_run(run.run_id).data.metrics)


def test_hydra_overrides_become_tags(store, client):
    with hydra.initialize_config_dir(str(CONF), version_base="1.3"):
        hydra_cfg = hydra.compose("config", overrides=["optimizer.lr=0.1"], return_hydra_config=True)
    HydraConfig.instance().set_config(hydra_cfg)
    try:
        with Run(compose("optimizer.lr=0.1", f"tracking.uri={store}")) as run:
            pass
    finally:
        HydraConfig.instance().cfg = None
    assert client.get_run(run.run_id).data.tags["hydra.overrides"] == "optimizer.lr=0.1"


def test_ui_command_names_the_store_and_the_runs_page_in_the_training_view(store):
    with Run(compose(f"tracking.uri={store}")) as run:
        experiment = mlflow.MlflowClient(store).get_run(run.run_id).info.experiment_id
        page = f"#/experiments/{experiment}/runs/{run.run_id}?workflowType=machine_learning"
        assert run.ui_command() == f"mlflow ui --backend-store-uri {store}\n  then open http://127.0.0.1:5000/{page}"
    # Still tagged for the MLflow 3 dashboards that open an experiment by its kind, before the workflow switch.
    tags = mlflow.MlflowClient(store).get_experiment(experiment).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    assert how_to_open("http://tracking.example:5000/", "7") == (
        "open http://tracking.example:5000/#/experiments/7?workflowType=machine_learning in a browser")
