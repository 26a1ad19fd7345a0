"""What many tests share: the real Hydra config composed with overrides, zoo models' reports, MLflow
stores and the size of a figure."""

import copy
import functools
import os
import pathlib
import shutil
import tempfile

import hydra
import keras
import matplotlib.image
import mlflow

from runner.architecture.tables import describe
from runner.config import schema

REPO = pathlib.Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
MODEL_NAMES = sorted(path.stem for path in (CONF / "model").glob("*.yaml"))

schema.register()


def compose(*overrides: str, app: str = "config"):
    """The runner's config (or another app's: conf/<app>.yaml) with these overrides: a copy of the one
    composed the first time they were asked for (a copy takes a thirtieth of composing; a third of the
    session's compositions are repeats)."""
    return copy.deepcopy(_composed(app, overrides))


@functools.cache
def _composed(app: str, overrides: tuple[str, ...]):
    with hydra.initialize_config_dir(str(CONF), version_base="1.3"):
        return hydra.compose(app, overrides=list(overrides))


@functools.lru_cache(maxsize=None)
def zoo_report(model: str, data: str = "imagenet", *overrides: str):
    """The report of a zoo model (cached: the 224 VGGs take seconds to build)."""
    result = describe(compose(f"model={model}", f"data={data}", *overrides))
    keras.backend.clear_session()
    return result


def new_store(directory: pathlib.Path) -> str:
    """The URI of a sqlite MLflow store at directory/mlflow.db, ready to use. MLflow creates and migrates
    a new store's tables in seconds; this test process does it once and copies the result."""
    database = directory / "mlflow.db"
    if not database.exists():
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_migrated_store(), database)
    return f"sqlite:///{database}"


@functools.cache
def _migrated_store() -> pathlib.Path:
    database = pathlib.Path(tempfile.mkdtemp(prefix="mlflow-store-")) / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{database}").search_experiments()  # creates and migrates the tables
    return database


def server_environment() -> dict[str, str]:
    """This process's environment for an `mlflow server` or `mlflow ui` the tests start, without MLflow 3's
    job execution: a job runner and seven huey consumers for its GenAI jobs, each importing MLflow
    (about 20 CPU-seconds a start on 2 cores, taken from the tests beside it), which no test uses."""
    return {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def row(report, name: str):
    matches = [layer for layer in report.layers if layer.name == name]
    assert matches, f"{report.model} has no row {name!r}"
    return matches[0]


def png_size(path) -> tuple[int, int]:
    """(width, height) of a PNG, read back as pixels."""
    height, width = matplotlib.image.imread(path).shape[:2]
    return width, height
