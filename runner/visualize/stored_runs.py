"""What a visualisation reads from the MLflow store: the run (its config and model: runner.tracking.artifacts)."""

import datetime
import os
from typing import Iterator, Optional

import mlflow
from mlflow.entities import Run

from runner.mistakes.errors import UserError
from runner.tracking import store
from runner.tracking.labels import ROLE_TAG


def open_store(uri: str) -> mlflow.MlflowClient:
    return store.existing_store(uri, "train a model first (python -m runner)")


def find_run(client: mlflow.MlflowClient, run_id: Optional[str]) -> Run:
    """Run `run_id`, else the latest FINISHED training run (not a sweep's parent, not a benchmark)."""
    if run_id:
        run = store.run_by_id(client, run_id, "visualize.model", "omit visualize.model for the latest finished run",
                              given=f"runs:/{run_id}")
        if ROLE_TAG in run.data.tags:  # a run that holds no model (tracking/labels.py)
            raise UserError(f"visualize.model=runs:/{run_id} is a {run.data.tags[ROLE_TAG]} run, which has no model: "
                            "give a training run (python -m runner.compare lists a sweep's jobs)")
        return run
    for run in _finished_runs(client):
        if ROLE_TAG not in run.data.tags:
            return run
    raise UserError(f"no finished training run in {client.tracking_uri}: train one (python -m runner) "
                    "or set visualize.model=runs:/<run_id>")


def announced(run: Run) -> str:
    """The line said before the work starts: which run is drawn, so a wrong default shows at once."""
    tags = run.data.tags
    started = datetime.datetime.fromtimestamp(run.info.start_time / 1000).astimezone()
    return (f"drawing MLflow run {run.info.run_name} ({run.info.run_id}): model {tags.get('model', '?')}, "
            f"data {tags.get('data', '?')}, started {started:%Y-%m-%d %H:%M %Z}")


def _finished_runs(client: mlflow.MlflowClient) -> Iterator[Run]:
    """FINISHED runs of every active experiment, newest first."""
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    if experiments:
        yield from store.paged(client.search_runs, experiment_ids=experiments,
                               filter_string="attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"])


def log_figures(client: mlflow.MlflowClient, run_id: str, paths: list[os.PathLike]) -> None:
    for path in paths:
        client.log_artifact(run_id, os.fspath(path), "visualize")
