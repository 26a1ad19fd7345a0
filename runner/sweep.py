"""A Hydra multirun as one MLflow parent run with a child run per job.

`SweepRun` is a Hydra callback (conf/hydra/default.yaml). It runs in the process that launches the
jobs, whatever the sweeper (basic, Optuna) or launcher (basic, joblib, submitit): it opens the parent
before the first job, hands its id to the jobs through the environment (launchers start their worker
processes after this, so they inherit it), and when the sweep ends records the best child, writes
the comparison (with sweep.first_layer_filters, the jobs' first-layer filters too) and ends the
parent. A sweep that stops early (a failed job, Ctrl-C, SIGTERM) still ends its parent, from an
atexit hook, so no parent is left RUNNING.
"""

import atexit
import datetime
import pathlib
import signal
import sys
import tempfile
from typing import Any, Optional

import mlflow
from hydra.experimental.callback import Callback
from mlflow.entities import Param
from omegaconf import DictConfig, OmegaConf

from runner import environment
from runner.config.schema import Direction
from runner.mistakes.errors import USAGE_EXIT_CODE, UserError
from runner.mistakes.messages import first_line
from runner.signals import interrupt
from runner.tracking.dashboard import how_to_open
from runner.tracking.labels import ROLE_TAG, SWEEP_ROLE, param_value
from runner.tracking.redact import redacted
from runner.tracking.server import check_store
from runner.tracking.store import open_experiment, store_uri
from runner.tracking.sweep_parent import PARENT_RUN_ENV
from runner.training.stops import Trap


class SweepRun(Callback):
    def __init__(self) -> None:
        self._client: Optional[mlflow.MlflowClient] = None
        self._run_id: Optional[str] = None
        self._sweep_dir: Optional[str] = None
        self._sweep: Optional[DictConfig] = None  # config.sweep: the objective and its direction
        # PARENT_RUN_ENV as it was, to put back: a dict, not a context manager, as the joblib and submitit
        # launchers pickle this callback for their workers.
        self._environment_before: dict[str, Optional[str]] = {}
        # SIGTERM between jobs would skip atexit; as KeyboardInterrupt it unwinds like Ctrl-C.
        self._sigterm = Trap(interrupt, (signal.SIGTERM,))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_store(config)  # a tracking server that does not answer: one line in seconds, before any job
        except UserError as error:  # raised, Hydra would only warn of it and launch the jobs
            print(f"error: {error}", file=sys.stderr)
            sys.exit(USAGE_EXIT_CODE)
        self._client, experiment_id = open_experiment(store_uri(config),
                                                      config.tracking.experiment or config.data.name)
        self._sweep_dir = config.hydra.sweep.dir
        self._sweep = config.sweep
        run = self._client.create_run(experiment_id, run_name=f"sweep-{datetime.datetime.now():%Y%m%d-%H%M%S}",
                                      tags=_parent_tags(config))
        self._run_id = run.info.run_id
        self._client.log_batch(self._run_id, params=[Param(k, v) for k, v in _parent_params(config).items()])
        self._environment_before = environment.snapshot(PARENT_RUN_ENV)
        environment.put({PARENT_RUN_ENV: self._run_id})
        atexit.register(self._end_if_open)
        self._sigterm.start()
        print(f"MLflow parent run {self._run_id} groups this sweep's jobs; follow them in the dashboard with:\n"
              f"  {how_to_open(self._client.tracking_uri, experiment_id)}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._end(completed=True)

    def _end_if_open(self) -> None:
        """atexit: the sweep raised (a failed job, Ctrl-C) before on_multirun_end."""
        self._end(completed=False)

    def _end(self, completed: bool) -> None:
        if self._run_id is None:
            return
        run_id, self._run_id = self._run_id, None
        environment.put(self._environment_before)
        self._sigterm.end()
        children = _children(self._client, run_id)
        status = "FINISHED" if completed else _stopped_status(children)
        try:
            _record_outcome(self._client, run_id, children, completed, self._sweep)
            _log_comparison(self._client, run_id, self._sweep_dir)
            if completed and self._sweep.first_layer_filters:  # an interrupted sweep ends without loading models
                _log_first_layer_filters(self._client, run_id, children, self._sweep, self._sweep_dir)
        finally:
            self._client.set_terminated(run_id, status)


def _parent_tags(config: DictConfig) -> dict[str, str]:
    return {
        ROLE_TAG: SWEEP_ROLE,
        "sweep.objective": config.sweep.objective.value,
        "sweep.direction": config.sweep.direction.value,
        "command": redacted(" ".join(sys.argv)),
        "hydra.sweep.dir": str(config.hydra.sweep.dir),
        **{str(key): str(value) for key, value in config.tracking.tags.items()},
    }


def _parent_params(config: DictConfig) -> dict[str, str]:
    space = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    params = {
        "sweep.overrides": " ".join(config.hydra.overrides.task),
        "sweep.sweeper": _short_name(config.hydra.sweeper._target_),
        "sweep.launcher": _short_name(config.hydra.launcher._target_),
        "sweep.space": "; ".join(f"{key}={value}" for key, value in space.items()),
    }
    return {key: param_value(value) for key, value in params.items() if value}


def _short_name(target: str) -> str:
    return target.rsplit(".", 1)[-1]


def _children(client: mlflow.MlflowClient, run_id: str) -> list[mlflow.entities.Run]:
    experiment_id = client.get_run(run_id).info.experiment_id
    return client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{run_id}'", max_results=50_000)


def _stopped_status(children: list[mlflow.entities.Run]) -> str:
    return "KILLED" if any(child.info.status == "KILLED" for child in children) else "FAILED"


def _record_outcome(client: mlflow.MlflowClient, run_id: str, children: list, completed: bool,
                    sweep: DictConfig) -> None:
    """Job counts, and the best finished child by sweep.objective in sweep.direction, on the parent."""
    metric = sweep.objective.value
    statuses = [child.info.status for child in children]
    client.log_batch(run_id, params=[Param("sweep.jobs", str(len(children)))])
    client.set_tag(run_id, "sweep.jobs_finished", str(statuses.count("FINISHED")))
    if not completed:
        client.set_tag(run_id, "failure_reason",
                       f"the sweep stopped early (a job failed, or it was interrupted) with {len(children)} "
                       f"child runs, {statuses.count('FINISHED')} finished; the sweep's output names the cause")
    scored = [child for child in children if child.info.status == "FINISHED" and metric in child.data.metrics]
    if not scored:
        return
    best_of = max if sweep.direction is Direction.maximize else min
    best = best_of(scored, key=lambda child: child.data.metrics[metric])
    client.log_metric(run_id, f"best_{metric}", best.data.metrics[metric])
    client.set_tag(run_id, "best_run_id", best.info.run_id)
    client.set_tag(run_id, "best_run_name", best.info.run_name)
    client.set_tag(run_id, "best_overrides", best.data.tags.get("hydra.overrides", ""))
    print(f"best job: {best.info.run_name} ({best.data.tags.get('hydra.overrides', '')}), "
          f"{metric} {best.data.metrics[metric]:.4f}")


def _log_comparison(client: mlflow.MlflowClient, run_id: str, sweep_dir: str) -> None:
    from runner.compare.comparison import compare_sweep  # matplotlib and the rest only when a sweep ends

    directory = pathlib.Path(sweep_dir)
    directory.mkdir(parents=True, exist_ok=True)  # a sweep whose jobs all failed early made none
    comparison = compare_sweep(client, run_id, directory)
    print(comparison.table)
    print(comparison.written)
    optuna_results = directory / "optimization_results.yaml"  # the Optuna sweeper's best trial
    if optuna_results.exists():
        client.log_artifact(run_id, str(optuna_results))


def _log_first_layer_filters(client: mlflow.MlflowClient, run_id: str, children: list, sweep: DictConfig,
                             sweep_dir: str) -> None:
    """Every finished job's first-layer filters side by side, headed with its objective, on the parent:
    Zeiler & Fergus 2014, Section 4 and Figure 6, set AlexNet's 11x11/4 filters beside ZFNet's 7x7/2."""
    # Keras and matplotlib only when a sweep ends
    from runner.visualize.filters import compared_filters

    finished = sorted((child for child in children if child.info.status == "FINISHED"),
                      key=lambda child: child.info.start_time)
    panels = [panel for panel in (_filters_panel(client, child, sweep.objective.value) for child in finished) if panel]
    if not panels:
        print("first_layer_filters: no finished job left a model, so there are no filters to draw")
        return
    title = f"first-layer filters of {len(panels)} jobs, each on its own colour scale"
    directory = pathlib.Path(sweep_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = compared_filters(panels, title, directory / "first_layer_filters.png")
    client.log_artifact(run_id, str(path))


def _filters_panel(client: mlflow.MlflowClient, child: mlflow.entities.Run, metric: str) -> tuple | None:
    """(heading, Filters) of a job's saved model; None, with a note, for a job that left none, one
    Keras cannot read, or one without a convolution."""
    import keras

    from runner.tracking.artifacts import model_file
    from runner.visualize.filters import Filters, first_conv

    with tempfile.TemporaryDirectory(prefix="filters-") as downloads:
        try:
            filters = Filters.of(first_conv(keras.saving.load_model(model_file(client, child, downloads),
                                                                    compile=False)))
        except (UserError, OSError, ValueError) as unreadable:  # Keras raises ValueError for a damaged file
            print(f"first_layer_filters: {child.info.run_name} skipped: {first_line(str(unreadable))}")
            return None
    score = child.data.metrics.get(metric)
    heading = f"{child.data.tags.get('model', child.info.run_name)} ({child.info.run_name}): " + (
        f"{metric} {score:.3f}" if score is not None else f"no {metric}")
    return heading, filters
