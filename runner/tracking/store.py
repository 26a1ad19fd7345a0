"""The MLflow store: where it is, how parallel jobs open it, and the experiment a run goes in."""

import contextlib
import fcntl
import importlib
import os
import pathlib
import re
import urllib.parse
from typing import Callable, Iterator, Optional

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig

from runner.disk import sqlite_file, sqlite_uri
from runner.mistakes.errors import UserError

DEFAULT_STORE_DIR = pathlib.Path("outputs")  # relative to where the command runs, as Hydra's outputs
PAGE_SIZE = 1000  # MLflow's largest page; a sweep can have hundreds of children
# What an experiment is for (the UI's ExperimentKind enum). MLflow 3 dashboards before the "GenAI / Model
# training" switch open an experiment by it (untagged: on its GenAI pages, Traces, with no runs in sight);
# later ones by the switch alone, so the addresses the commands print choose the view (dashboard.py).
EXPERIMENT_KIND = "mlflow.experimentKind"
TRAINING_EXPERIMENT = "custom_model_development"


def store_uri(cfg: DictConfig) -> str:
    """MLFLOW_TRACKING_URI, else tracking.uri, else a sqlite file under ./outputs."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or cfg.tracking.uri
    if uri:
        return uri
    DEFAULT_STORE_DIR.mkdir(parents=True, exist_ok=True)
    return store_in(DEFAULT_STORE_DIR)


def store_in(folder: pathlib.Path) -> str:
    """The URI of a sqlite store in `folder` (mlflow.db there)."""
    return sqlite_uri(folder / "mlflow.db")


def existing_store(uri: str, first: str) -> mlflow.MlflowClient:
    """A client on the store at `uri`; a local store that does not exist is an error, never created
    (a reader of runs: `first` says what writes them, e.g. "train a model first (python -m runner)")."""
    path = _local_path(uri)
    if path is not None and not path.exists():
        raise UserError(f"no MLflow store at {path}: {first}, "
                        "or point tracking.uri (or MLFLOW_TRACKING_URI) at the store it wrote")
    return mlflow.MlflowClient(uri)


# What MLflow accepts as a run id (mlflow/utils/validation.py, _validate_run_id).
RUN_ID = re.compile(r"[a-zA-Z0-9][\w\-]{0,255}")


def run_by_id(client: mlflow.MlflowClient, run_id: str, key: str, otherwise: str, given: str | None = None) -> Run:
    """Run `run_id`; one not in the store is a UserError naming the config `key`, its value as `given`
    (default: the id) and what to do `otherwise` (the store's other errors pass as they are). An id
    MLflow would refuse (empty, `..`, a path) is one line before the store is asked."""
    if not RUN_ID.fullmatch(run_id):
        raise UserError(f"{key}={given or run_id}: {run_id!r} is not an MLflow run id (letters, digits, _ and -, "
                        f"as the 32 hex digits a run's page shows); {otherwise}")
    try:
        return client.get_run(run_id)
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise UserError(f"{key}={given or run_id}: no such run in {client.tracking_uri}; {otherwise}") from None


def paged(search: Callable, **kwargs) -> Iterator:
    """Every result of an MLflow search (client.search_runs, search_experiments), following its page tokens."""
    token = None
    while True:
        page = search(max_results=PAGE_SIZE, page_token=token, **kwargs)
        yield from page
        token = page.token
        if not token:
            return


def _local_path(uri: str) -> Optional[pathlib.Path]:
    """The file or folder of a sqlite or file store; None for servers (and in-memory sqlite)."""
    database = sqlite_file(uri)
    if database is not None:
        return database
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme in ("", "file"):
        return pathlib.Path(urllib.parse.unquote(parsed.path))
    return None


def open_experiment(uri: str, name: str) -> tuple[mlflow.MlflowClient, str]:
    """A client on the store and the id of experiment `name`, created if missing."""
    with _store_lock(uri):
        client = mlflow.MlflowClient(uri)  # creates and migrates a new store
        return client, _experiment_id(client, name, uri)


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """MLflow creates a new sqlite store's tables without a lock: parallel jobs on a fresh store break it."""
    database = sqlite_file(uri)
    if database is None:
        yield
        return
    # Seconds of imports the store would do inside the lock, where parallel jobs queue.
    importlib.import_module("mlflow.store.tracking.sqlalchemy_store")
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def _experiment_id(client: mlflow.MlflowClient, name: str, uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=_artifact_location(uri, name),
                                            tags={EXPERIMENT_KIND: TRAINING_EXPERIMENT})
        except MlflowException:
            experiment = client.get_experiment_by_name(name)  # a parallel job on a server created it first
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        raise UserError(
            f"MLflow experiment {name!r} is deleted in {uri}: restore it "
            f"(mlflow experiments restore --experiment-id {experiment.experiment_id}) "
            "or name another with tracking.experiment=NAME"
        )
    if EXPERIMENT_KIND not in experiment.tags:  # an experiment made before the tag, or by another tool
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND, TRAINING_EXPERIMENT)
    return experiment.experiment_id


def _artifact_location(uri: str, experiment: str) -> Optional[str]:
    """A sqlite store keeps artifacts beside its file; MLflow's default is ./mlruns wherever the job ran."""
    database = sqlite_file(uri)
    if database is None:
        return None  # servers and file stores have their own artifact roots
    return (database.parent / "mlartifacts" / experiment).resolve().as_uri()
