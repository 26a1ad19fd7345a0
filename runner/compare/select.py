"""Finding a sweep in the MLflow store: the store itself, the sweep's parent run and its children."""

from typing import Optional

import mlflow
from mlflow.entities import Run
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from runner.mistakes.errors import UserError
from runner.tracking import store
from runner.tracking.labels import ROLE_TAG, SWEEP_ROLE

SWEEP_FILTER = f"tags.\"{ROLE_TAG}\" = '{SWEEP_ROLE}'"


def existing_store(uri: str) -> mlflow.MlflowClient:
    return store.existing_store(uri, "run a sweep first (python -m runner -m ...)")


def find_sweep(client: mlflow.MlflowClient, run_id: Optional[str] = None, experiment: Optional[str] = None,
               tag: Optional[str] = None) -> Run:
    """The sweep's parent run: `run_id`, else the latest sweep in `experiment` (all when None) with `tag`."""
    if run_id:
        return _sweep_by_id(client, run_id)
    key, value = _parse_tag(tag) if tag else (None, None)
    sweeps = list(store.paged(client.search_runs, experiment_ids=_experiment_ids(client, experiment),
                         filter_string=SWEEP_FILTER, order_by=["attributes.start_time DESC"]))
    matching = [sweep for sweep in sweeps if key is None or sweep.data.tags.get(key) == value]
    if not matching:
        raise UserError(_none_found(sweeps, experiment, key, value))
    return matching[0]


def sweep_children(client: mlflow.MlflowClient, parent: Run) -> list[Run]:
    """Every child run of `parent`, whatever its status, oldest first."""
    return list(store.paged(client.search_runs, experiment_ids=[parent.info.experiment_id],
                       filter_string=f"tags.{MLFLOW_PARENT_RUN_ID} = '{parent.info.run_id}'",
                       order_by=["attributes.start_time ASC"]))


def _sweep_by_id(client: mlflow.MlflowClient, run_id: str) -> Run:
    run = store.run_by_id(client, run_id, "compare.run_id", "omit compare.run_id to compare the latest sweep")
    if run.data.tags.get(ROLE_TAG) != SWEEP_ROLE:
        parent = run.data.tags.get(MLFLOW_PARENT_RUN_ID)
        hint = f"it is a job of the sweep compare.run_id={parent}" if parent else "omit it for the latest sweep"
        raise UserError(f"compare.run_id={run_id} is not a sweep's parent run (tag runner.role=sweep): {hint}")
    return run


def _parse_tag(tag: str) -> tuple[str, str]:
    key, separator, value = tag.partition("=")
    if not separator or not key:
        raise UserError(f"compare.tag={tag}: expected key=value, e.g. \"compare.tag='study=lrn'\" "
                        "for a sweep run with +tracking.tags.study=lrn")
    return key, value


def _experiment_ids(client: mlflow.MlflowClient, name: Optional[str]) -> list[str]:
    experiments = list(store.paged(client.search_experiments))
    if name is None:
        return [experiment.experiment_id for experiment in experiments]
    ids = [experiment.experiment_id for experiment in experiments if experiment.name == name]
    if not ids:
        names = ", ".join(sorted(experiment.name for experiment in experiments)) or "none"
        raise UserError(f"compare.experiment={name}: no such MLflow experiment in {client.tracking_uri}; "
                        f"there are: {names}")
    return ids


def _none_found(sweeps: list[Run], experiment: Optional[str], key: Optional[str], value: Optional[str]) -> str:
    where = f"in experiment {experiment}" if experiment else "in any experiment"
    if key is None:
        return (f"no sweep {where} (an MLflow run tagged runner.role=sweep): start one with "
                "python -m runner -m ..., or set compare.experiment=NAME or compare.run_id=ID")
    values = sorted({sweep.data.tags[key] for sweep in sweeps if key in sweep.data.tags})
    valid = f"sweeps there have {key}=" + ", ".join(values) if values else f"no sweep there has a tag {key}"
    return f"compare.tag={key}={value}: no sweep {where} has this tag; {valid}"
