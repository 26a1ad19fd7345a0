"""What a training run left in the MLflow store that others read back: its resolved config and its
model (visualize, and runner.weights for model.weights=runs:/<run_id>)."""

import pathlib
import tempfile
from typing import Optional

import mlflow
from mlflow.entities import Run
from omegaconf import DictConfig, OmegaConf

from runner.mistakes.errors import UserError
from runner.tracking import store

RUNS_PREFIX = "runs:/"  # MLflow's form of a run's files: runs:/<run_id>

MODEL_ARTIFACT = "model.keras"
CONFIG_ARTIFACT = "config.yaml"


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


def run_id_of(reference: str) -> str:
    """The run id in `runs:/<run_id>[/path]` ("" when there is none)."""
    return reference.removeprefix(RUNS_PREFIX).strip("/").split("/")[0]


def referenced_run(cfg: DictConfig, key: str, reference: str) -> tuple[mlflow.MlflowClient, Run]:
    """The run `runs:/<run_id>[/...]` names, given as config `key`, in the store cfg.tracking says."""
    run_id = run_id_of(reference)
    client = store.existing_store(store.store_uri(cfg), "train a model first (python -m runner)")
    return client, store.run_by_id(client, run_id, key, "give runs:/<run_id> of a training run", given=reference)


def model_reference(cfg: DictConfig, key: str, downloads: str) -> pathlib.Path:
    """The model.keras that config `key` (e.g. predict.model) names: runs:/<run_id>'s (in the store
    cfg.tracking says), downloaded into `downloads` if logged, or a file."""
    reference = OmegaConf.select(cfg, key)
    if not reference:
        raise UserError(f"{key} is not set; give runs:/<run_id> or a model.keras file")
    if reference.startswith(RUNS_PREFIX):
        return model_file(*referenced_run(cfg, key, reference), downloads)
    path = pathlib.Path(reference).expanduser()
    if not path.is_file():
        raise UserError(f"{key}={reference}: no such file; give runs:/<run_id> or a model.keras file")
    return path


def _download(client: mlflow.MlflowClient, run: Run, name: str, folder: str) -> Optional[pathlib.Path]:
    if name not in {artifact.path for artifact in client.list_artifacts(run.info.run_id)}:
        return None
    return pathlib.Path(client.download_artifacts(run.info.run_id, name, folder))
