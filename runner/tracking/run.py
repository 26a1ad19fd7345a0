"""MLflow for one training run: the store, the run's lifecycle, its params, metrics and figures.

`with Run(cfg) as run:` starts a run that records the resolved config, and ends it FINISHED,
FAILED (with a `failure_reason` tag) or KILLED (KeyboardInterrupt: Ctrl-C, or a stop that
runner/training/stops.py raised) however the block is left.
Writes go through MlflowClient in batches, a few per epoch, so parallel jobs can share a sqlite store.
On a tracking server (on_server.py) the metrics go without waiting, requests give up in seconds,
and a server that stops answering ends the command in one line.
"""

import functools
import numbers
import os
import sys
import time
from collections.abc import Callable
from typing import Any, Optional

import mlflow
import numpy as np
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import MAX_TAG_VAL_LENGTH
from omegaconf import DictConfig, OmegaConf

from runner import disk, environment
from runner.mistakes.errors import UserError
from runner.mistakes.messages import named_first_line
from runner.signals import held
from runner.tracking import per_class, plots
from runner.tracking.dashboard import how_to_open
from runner.tracking.labels import config_params, param_value, parent_tag, run_name, run_tags
from runner.tracking.on_server import OnServer
from runner.tracking.redact import redacted
from runner.tracking.server import is_server
from runner.tracking.store import open_experiment, store_uri
from runner.tracking.sweep_parent import parent_run_id


def _held(method: Callable) -> Callable:
    """`method` with stops held until it returns (runner/signals.py): a stop raised inside MLflow's sqlite
    driver would leave the store locked, and the run could not end KILLED."""

    @functools.wraps(method)
    def holding(*args, **kwargs):
        with held():
            return method(*args, **kwargs)

    return holding


class Run:
    """One MLflow run; use as a context manager. Logging methods write to this run only."""

    def __init__(self, cfg: DictConfig, resume_run_id: Optional[str] = None, resumable: bool = False):
        """resumable: a training run, whose resume point holds what a lost tracking server lacks."""
        self._cfg = cfg
        self._resume_run_id = resume_run_id  # reopen this run (it keeps its params and metrics)
        self._resumable = resumable
        self._uri = store_uri(cfg)
        self._client: Optional[mlflow.MlflowClient] = None
        self._environment_before: dict[str, Optional[str]] = {}
        self._server: Optional[OnServer] = None
        if is_server(self._uri):
            again = "" if cfg.trainer.resume else " with trainer.resume=true"
            self._server = OnServer(self._uri, resumable, again)
        self.run_id: Optional[str] = None

    def __enter__(self) -> "Run":
        # The fluent API is the public way to get the system-metrics monitor; it reads the global URI.
        # MLflow 3 also exports it as MLFLOW_TRACKING_URI, which would outrank tracking.uri for the
        # next job in this process and for every subprocess; __exit__ puts the variable back.
        self._environment_before = environment.snapshot("MLFLOW_TRACKING_URI")
        if self._server:
            self._server.open()
        try:
            self._start()
        except BaseException:
            # __exit__ is not called when __enter__ raises, and the run may have started (a stop held
            # during the start is raised as it ends).
            self.__exit__(*sys.exc_info())
            raise
        return self

    @_held
    def _start(self) -> None:
        cfg = self._cfg
        self._client, experiment = self._open_experiment()
        mlflow.set_tracking_uri(self._uri)
        if self._resume_run_id:
            self._check_resumable(self._resume_run_id)
            active = mlflow.start_run(run_id=self._resume_run_id, log_system_metrics=cfg.tracking.system_metrics)
        else:
            active = mlflow.start_run(
                experiment_id=experiment,
                run_name=cfg.tracking.run_name or run_name(cfg),
                tags=run_tags(cfg) | parent_tag(),
                log_system_metrics=cfg.tracking.system_metrics,
            )
        self.run_id = active.info.run_id
        if self._server:
            self._server.started(self._client, self.run_id)
        if not self._resume_run_id:
            self.log_params(config_params(cfg))
            self.log_text(redacted(OmegaConf.to_yaml(cfg, resolve=True)), "config.yaml")

    def _check_resumable(self, run_id: str) -> None:
        try:
            self._client.get_run(run_id)
        except MlflowException:
            raise UserError(f"trainer.resume: this config's resume point continues MLflow run {run_id}, which is not "
                            f"in {self._uri}; point tracking.uri at its store, or start afresh with "
                            "trainer.resume=false") from None

    def _open_experiment(self) -> tuple[mlflow.MlflowClient, str]:
        """A sweep's jobs go in their parent's experiment, even when they sweep the dataset."""
        parent = parent_run_id()
        if parent is None:
            return open_experiment(self._uri, self._cfg.tracking.experiment or self._cfg.data.name)
        client = mlflow.MlflowClient(self._uri)
        return client, client.get_run(parent).info.experiment_id

    @_held
    def __exit__(self, exc_type, exc, traceback) -> bool:
        try:
            self._end(_end_status(exc), exc)
        except Exception as failure:
            lost = self._server and self._server.lost(failure)  # it stopped answering as the end was written
            if lost:
                raise lost from None
            if not disk.is_full(failure):
                raise
            # The store is full: the run stays RUNNING, which only a rerun with room can end.
            raise UserError(disk.store_full_line(self._uri, self.run_id, exc, False, self._resumable)) from failure
        finally:
            if self._server:
                self._server.close()
            environment.put(self._environment_before)
        if exc is not None and disk.written_path(exc) is None and disk.store_is_full(exc):  # full for a moment
            raise UserError(disk.store_full_line(self._uri, self.run_id, exc, True, self._resumable)) from exc
        return False

    def _end(self, status: str, exc: Optional[BaseException]) -> None:
        if self._server and self._server.ended_without_server(exc):  # or finishes once the server holds every metric
            return
        try:
            if status == "FAILED" and self.run_id:
                advice = disk.RESUMES if self._resumable else disk.RERUN
                reason = disk.full_disk_line(exc, advice) or named_first_line(exc)
                self._client.set_tag(self.run_id, "failure_reason", reason[:MAX_TAG_VAL_LENGTH])
        finally:
            mlflow.end_run(status)  # also stops the system-metrics monitor

    def confirm_metrics(self) -> None:
        """Wait until a tracking server holds every metric logged, or raise ServerLost: before the
        resume point, which holds the epochs' metrics too, goes."""
        if self._server:
            self._server.confirm()

    @_held
    def log_params(self, params: dict[str, Any]) -> None:
        entries = [Param(key, param_value(value)) for key, value in params.items()]
        self._client.log_batch(self.run_id, params=entries)  # the client splits it into legal batches

    @_held
    def log_metrics(self, metrics: dict[str, Optional[float]], step: int) -> None:
        """Written now; to a tracking server, queued without waiting (confirm_metrics waits)."""
        timestamp = int(time.time() * 1000)
        entries = [Metric(key, float(value), timestamp, step) for key, value in metrics.items() if value is not None]
        if entries and self._server:
            self._server.put(entries)
        elif entries:
            self._client.log_batch(self.run_id, metrics=entries)

    @_held
    def log_epoch(self, epoch: int, logs: dict[str, Any]) -> None:
        """Every number of an epoch's logs, in one batch, at step=epoch (the loop's recorder hook); not
        ReduceLROnPlateau's `learning_rate`, the next epoch's rate (`lr` is the epoch's own)."""
        numeric = {key: value for key, value in logs.items() if _is_number(value) and key != "learning_rate"}
        self.log_metrics(numeric, step=epoch)

    @_held
    def set_tags(self, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self._client.set_tag(self.run_id, key, str(value))

    @property
    def client(self) -> mlflow.MlflowClient:
        return self._client

    @_held
    def log_text(self, text: str, artifact_file: str) -> None:
        self._client.log_text(self.run_id, text, artifact_file)

    @_held
    def log_curves(self, history: dict[str, list[float]]) -> None:
        self._log_figure(plots.curves(history), "curves.png")

    @_held
    def log_confusion_matrix(self, y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str],
                             training: dict[str, list] | None = None) -> None:
        """The matrix's picture, and beside it each class's precision, recall and F1 (and `training`'s
        columns: what training saw of each class) and the most confused pairs: CSV files, and MLflow
        tables the dashboard's artifact view shows as tables."""
        self._log_figure(plots.confusion_matrix(y_true, y_pred, class_names), "confusion_matrix.png")
        for name, columns in (("per_class", {**per_class.table(y_true, y_pred, class_names), **(training or {})}),
                              ("confused_pairs", per_class.confused_pairs(y_true, y_pred, class_names))):
            self.log_text(per_class.as_csv(columns), f"{name}.csv")
            self._client.log_table(self.run_id, data=columns, artifact_file=f"{name}.json")

    @_held
    def log_mistakes(self, images: np.ndarray, titles: list[str]) -> None:
        if len(images):
            self._log_figure(plots.mistakes(images, titles), "mistakes.png")

    def _log_figure(self, figure, artifact_file: str) -> None:
        self._client.log_figure(self.run_id, figure, artifact_file, save_kwargs=plots.SAVED_AS)

    @_held
    def log_artifact(self, path: str | os.PathLike, folder: Optional[str] = None) -> None:
        """The file at `path` as an artifact of this run, in the artifact folder `folder` (None: the top)."""
        self._client.log_artifact(self.run_id, os.fspath(path), folder)

    @_held
    def log_model(self, model, registered_name: Optional[str] = None) -> None:
        """`model` in MLflow's Keras flavor as `model`, with its input signature, so that
        `mlflow models serve -m runs:/<run_id>/model` answers; registered as `registered_name` if given.
        The requirements are this process's: MLflow would otherwise load the model again to infer them."""
        import keras
        import mlflow.keras
        import tensorflow as tf
        from mlflow.models import infer_signature

        example = np.zeros((1, *model.input_shape[1:]), np.float32)
        signature = infer_signature(example, model.predict(example, verbose=0))
        mlflow.keras.log_model(model, name="model", signature=signature, registered_model_name=registered_name,
                               pip_requirements=[f"keras=={keras.__version__}", f"tensorflow=={tf.__version__}"])

    def ui_command(self) -> str:
        """How to see this run: its page in the store's dashboard, in the training view (dashboard.py)."""
        return how_to_open(self._uri, self._client.get_run(self.run_id).info.experiment_id, self.run_id)


class NotRecorded:
    """What a multi-worker run's non-chief workers hold instead of a Run: they train and evaluate
    with the chief, and record nothing (the chief's run holds everything, once)."""

    run_id = None

    def __init__(self, worker_index: int):
        self.worker_index = worker_index

    def __enter__(self) -> "NotRecorded":
        print(f"worker {self.worker_index}: training with the chief, which records the MLflow run")
        return self

    def __exit__(self, *exc_info) -> bool:
        return False

    def confirm_metrics(self) -> None:
        pass  # nothing was sent

    def __getattr__(self, name: str):
        if name.startswith(("log_", "set_")):  # Run's recording methods
            return lambda *args, **kwargs: None
        raise AttributeError(name)


def _end_status(exc: Optional[BaseException]) -> str:
    if exc is None or (isinstance(exc, SystemExit) and exc.code in (None, 0)):
        return "FINISHED"
    if isinstance(exc, KeyboardInterrupt):
        return "KILLED"
    return "FAILED"


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
