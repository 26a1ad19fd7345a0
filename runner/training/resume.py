"""Resuming an interrupted run from its config alone: the same command continues where it stopped.

The resume point of a run lives in outputs/resume/<key>/, where the key is a hash of the resolved
config without the keys that do not change what is trained (where it is recorded, where the data
sit). After every epoch it holds a TensorFlow checkpoint of the model, the optimizer (its step
counter is the schedule's position) and the epoch, and `state.json`: the MLflow run id, the epoch
and the history so far, the run's output folder (where its best and last weights are) and the
counters of the callbacks that decide the rest of the run (early stopping, the plateau schedule,
the best checkpoint's score), which Keras resets at the start of training. The checkpoint is
written first and `state.json` names it, each through a rename, so a kill at any moment leaves the
previous, complete resume point. A run that finishes deletes its resume point; one that stops
(killed, SIGTERM, Ctrl-C, an exception) keeps it. Under multi_worker each worker keeps its own.
"""

import dataclasses
import hashlib
import json
import os
import pathlib
import re
import shutil
from typing import Optional

import keras
import mlflow
import tensorflow as tf
from omegaconf import DictConfig, OmegaConf

from runner.errors import UserError

RESUME_DIR = pathlib.Path("outputs") / "resume"  # relative to where the command runs, as the store
# Where a run is recorded, where its data sit and whether to resume do not change what it trains.
IGNORED_KEYS = ("tracking", "describe", "compare", "data.root")
STATE_FILE = "state.json"
# What each stateful callback counts: the attributes its on_train_begin resets (Keras 3).
COUNTERS = {
    keras.callbacks.EarlyStopping: ("wait", "best", "best_epoch", "stopped_epoch"),
    keras.callbacks.ReduceLROnPlateau: ("wait", "best", "cooldown_counter"),
    keras.callbacks.ModelCheckpoint: ("best",),
}


def config_key(cfg: DictConfig) -> str:
    settings = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    for dotted in (*IGNORED_KEYS, "trainer.resume"):
        *parents, leaf = dotted.split(".")
        node = settings
        for parent in parents:
            node = node.get(parent, {})
        node.pop(leaf, None)
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


@dataclasses.dataclass
class ResumePoint:
    run_id: str
    epoch: int  # epochs completed
    history: dict[str, list[float]]
    checkpoint: str  # path prefix of the TensorFlow checkpoint
    run_dir: str = ""  # the output folder of the command that started the run
    counters: list[dict] = dataclasses.field(default_factory=list)  # per counted callback, in order
    stopped: bool = False  # a callback (early stopping) had ended training


def find(cfg: DictConfig, worker: int = 0) -> tuple[pathlib.Path, Optional[ResumePoint]]:
    """This config's resume folder and what it holds, as trainer.resume asks. Under multi_worker each
    worker keeps its own (the chief's is the plain key), so workers need no shared disk."""
    directory = RESUME_DIR / (config_key(cfg) + (f"-worker{worker}" if worker else ""))
    choice = str(cfg.trainer.resume)
    if choice.lower() == "false":
        shutil.rmtree(directory, ignore_errors=True)
        return directory, None
    point = _read(directory)
    if choice.lower() not in ("auto", "true") and (point is None or point.run_id not in (choice, None)):
        raise UserError(f"trainer.resume={choice}: no resume point of that run for this config in {directory}; "
                        "resume with the command that started it, or use trainer.resume=auto|false")
    return directory, point


def rewound(point: Optional[ResumePoint], epoch: int) -> Optional[ResumePoint]:
    """The point as it stood after `epoch`, which must be this one or the one before (the checkpoint
    manager keeps both): workers killed between their saves resume together from the epoch all of
    them saved. Counters of callbacks stay as saved last (off by at most that epoch)."""
    if point is None or epoch == point.epoch:
        return point
    if epoch == 0:
        return None
    if epoch != point.epoch - 1:
        raise UserError(f"the workers' resume points are {point.epoch - epoch} epochs apart; "
                        "start afresh with trainer.resume=false on every worker")
    return dataclasses.replace(
        point, epoch=epoch, stopped=False, history={key: values[:epoch] for key, values in point.history.items()},
        checkpoint=re.sub(r"ckpt-\d+$", f"ckpt-{epoch}", point.checkpoint))


def _read(directory: pathlib.Path) -> Optional[ResumePoint]:
    try:
        state = json.loads((directory / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    return ResumePoint(**state)


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the resume point at the end of every epoch. Put it after the `counted` callbacks, so it
    saves their counters of this epoch, and before the MLflow logger, so an epoch recorded in MLflow
    is always one the resume point holds (`missing_epochs` fills the gap)."""

    def __init__(self, directory: pathlib.Path, model, optimizer, run_id: str, point: Optional[ResumePoint],
                 run_dir: pathlib.Path, counted: list[keras.callbacks.Callback]):
        super().__init__()
        self._directory = directory
        self._run_id = run_id
        self._run_dir = str(run_dir)
        self._point = point
        self._counted = [callback for callback in counted if type(callback) in COUNTERS]
        self._history = point.history if point else {}
        self._epoch = tf.Variable(point.epoch if point else 0, dtype=tf.int64, trainable=False)
        self._checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=self._epoch)
        self._manager = tf.train.CheckpointManager(self._checkpoint, str(directory / "checkpoints"), max_to_keep=2)
        if point:
            # The optimizer must be built: its slots (momentum) are restored, not created later.
            self._checkpoint.restore(point.checkpoint).assert_existing_objects_matched()

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        """After the counted callbacks reset themselves: a resumed run sets their counters back."""
        if self._point:
            for callback, counters in zip(self._counted, self._point.counters):
                vars(callback).update(counters)
            self.model.stop_training = self._point.stopped

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        for key, value in (logs or {}).items():
            self._history.setdefault(key, []).append(float(value))
        self._epoch.assign(epoch + 1)
        path = self._manager.save(checkpoint_number=epoch + 1)
        counters = [{name: _plain(getattr(callback, name)) for name in COUNTERS[type(callback)]}
                    for callback in self._counted]
        _write_atomically(self._directory / STATE_FILE, json.dumps(dataclasses.asdict(ResumePoint(
            self._run_id, epoch + 1, self._history, path, self._run_dir, counters, bool(self.model.stop_training)))))

    def finished(self) -> None:
        shutil.rmtree(self._directory, ignore_errors=True)


def missing_epochs(client: mlflow.MlflowClient, run_id: str, point: ResumePoint) -> dict[int, dict[str, float]]:
    """Epochs the resume point holds that the run does not (killed between the checkpoint and the log)."""
    logged = {metric.step for metric in client.get_metric_history(run_id, "val_top1")}
    return {epoch: {key: values[epoch] for key, values in point.history.items() if epoch < len(values)}
            for epoch in range(point.epoch) if epoch not in logged}


def _plain(value):
    """A counter as JSON keeps it: Keras holds some as NumPy or tensor scalars (inf stays inf)."""
    return float(value) if isinstance(value, float) or hasattr(value, "dtype") else value


def _write_atomically(path: pathlib.Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
