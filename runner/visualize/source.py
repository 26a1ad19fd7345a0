"""What a visualisation reads from the MLflow store: the run, its resolved config and its model."""

import os
import pathlib
import tempfile
from typing import Iterator, Optional

import mlflow
from mlflow.entities import Run
from omegaconf import DictConfig, OmegaConf

from runner.errors import UserError
from runner.tracking import store

MODEL_ARTIFACT = "model.keras"
CONFIG_ARTIFACT = "config.yaml"
# Runs that hold no model carry the tag runner.role: a sweep's parent ("sweep", runner/sweep.py)
# and a benchmark ("bench", runner/bench); training runs carry none.
ROLE = "runner.role"


def open_store(uri: str) -> mlflow.MlflowClient:
    return store.existing_store(uri, "train a model first (python -m runner)")


def find_run(client: mlflow.MlflowClient, run_id: Optional[str]) -> Run:
    """Run `run_id`, else the latest FINISHED training run (not a sweep's parent, not a benchmark)."""
    if run_id:
        run = store.run_by_id(client, run_id, "visualize.run_id", "omit visualize.run_id for the latest finished run")
        if ROLE in run.data.tags:
            raise UserError(f"visualize.run_id={run_id} is a {run.data.tags[ROLE]} run, which has no model: "
                            "give a training run (python -m runner.compare lists a sweep's jobs)")
        return run
    for run in _finished_runs(client):
        if ROLE not in run.data.tags:
            return run
    raise UserError(f"no finished training run in {client.tracking_uri}: train one (python -m runner) "
                    "or set visualize.run_id=ID")


def run_config(client: mlflow.MlflowClient, run: Run) -> DictConfig:
    """The run's resolved config, as training logged it (config.yaml)."""
    with tempfile.TemporaryDirectory(prefix="visualize-") as folder:
        path = _download(client, run, CONFIG_ARTIFACT, folder)
        if path is None:
            raise UserError(f"run {run.info.run_id} has no {CONFIG_ARTIFACT} artifact: "
                            "it was not recorded by python -m runner")
        return OmegaConf.create(path.read_text())


def model_file(client: mlflow.MlflowClient, run: Run, folder: str) -> pathlib.Path:
    """The run's model.keras: its artifact if logged (downloaded into `folder`), else the file in its
    Hydra run folder (tag hydra.output_dir) on this machine."""
    logged = _download(client, run, MODEL_ARTIFACT, folder)
    if logged is not None:
        return logged
    output_dir = run.data.tags.get("hydra.output_dir")
    local = pathlib.Path(output_dir) / MODEL_ARTIFACT if output_dir else None
    if local is not None and local.is_file():
        return local
    where = f"nor at {local}" if local else "and it has no hydra.output_dir tag"
    raise UserError(f"run {run.info.run_id} has no {MODEL_ARTIFACT} artifact {where}: train with "
                    "tracking.log_model=true, or run this on the machine that trained it")


def _download(client: mlflow.MlflowClient, run: Run, name: str, folder: str) -> Optional[pathlib.Path]:
    if name not in {artifact.path for artifact in client.list_artifacts(run.info.run_id)}:
        return None
    return pathlib.Path(client.download_artifacts(run.info.run_id, name, folder))


def _finished_runs(client: mlflow.MlflowClient) -> Iterator[Run]:
    """FINISHED runs of every active experiment, newest first."""
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    if experiments:
        yield from store.paged(client.search_runs, experiment_ids=experiments,
                               filter_string="attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"])


def log_figures(client: mlflow.MlflowClient, run_id: str, paths: list[os.PathLike]) -> None:
    for path in paths:
        client.log_artifact(run_id, os.fspath(path), "visualize")
