"""Resuming an interrupted run from its config alone: the same command continues where it stopped.

The resume point of a run lives in outputs/resume/<key>/, where the key is a hash of the resolved
config without the keys that do not change what is trained (where it is recorded, where the data
sit). After every epoch it holds a TensorFlow checkpoint of the model (its raw weights, as training
left them), the optimizer (its step counter is the schedule's position; with trainer.ema, the
weights' average) and the epoch, and `state.json`: the MLflow run id, the epoch
and the history so far, the run's output folder (where its best and last weights are) and the
counters of the callbacks that decide the rest of the run (early stopping, the plateau schedule,
the best checkpoint's score), which Keras resets at the start of training. The checkpoint is
written first and `state.json` names it, each through a rename, so a kill at any moment leaves the
previous, complete resume point. A run that finishes deletes its resume point; one that stops
(killed, SIGTERM, Ctrl-C, an exception) keeps it. Under multi_worker each worker keeps its own.

The process training from a folder holds its lock (runner/training/resume_lock.py). A resume point
damaged after all (a disk error, a hand edit) is refused in one line saying both ways out, unless
only its latest checkpoint is lost: then it resumes from the one before.
"""

import contextlib
import dataclasses
import hashlib
import json
import logging
import pathlib
import re
import shutil
from typing import Optional

import keras
import mlflow
import tensorflow as tf
from omegaconf import DictConfig, OmegaConf

from runner.mistakes.errors import UserError
from runner.session.strategy import Worker, agreed_epoch
from runner.training import resume_lock, resume_state

log = logging.getLogger(__name__)

RESUME_DIR = pathlib.Path("outputs") / "resume"  # relative to where the command runs, as the store
# Where a run is recorded, where its data sit, what a sweep ranks it by and whether to resume do
# not change what it trains.
IGNORED_KEYS = ("tracking", "describe", "sweep", "data.root", "trainer.resume", "trainer.resume_run")
# What each stateful callback counts: the attributes its on_train_begin resets (Keras 3).
COUNTERS = {
    keras.callbacks.EarlyStopping: ("wait", "best", "best_epoch", "stopped_epoch"),
    keras.callbacks.ReduceLROnPlateau: ("wait", "best", "cooldown_counter"),
    keras.callbacks.ModelCheckpoint: ("best",),
}


def config_key(cfg: DictConfig) -> str:
    settings = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    for dotted in IGNORED_KEYS:
        *parents, leaf = dotted.split(".")
        node = settings
        for parent in parents:
            node = node.get(parent, {})
        node.pop(leaf, None)
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Start:
    """Where a run starts: epoch 0 of a new run, or where an interrupted one stopped."""

    epoch: int = 0  # epochs completed
    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    run_id: Optional[str] = None  # the MLflow run to continue; None: a new run
    run_dir: Optional[pathlib.Path] = None  # where its weights and model go (a resumed run: where it began)
    directory: Optional[pathlib.Path] = None  # its resume folder, outputs/resume/<key>
    checkpoint: Optional[str] = None  # path prefix of the TensorFlow checkpoint to restore
    counters: list[dict] = dataclasses.field(default_factory=list)  # per counted callback, in order
    stopped: bool = False  # a callback (early stopping) had ended training

    @property
    def resumed(self) -> bool:
        # Not the run id: a non-chief worker records nothing and saves none.
        return self.checkpoint is not None

    @property
    def key(self) -> str:
        return self.directory.name


def claimed(cfg: DictConfig, this: Worker) -> contextlib.AbstractContextManager[pathlib.Path]:
    """This config's resume folder, held by this process until the block ends; refused while another
    live process trains it, unless trainer.resume=false asks for a separate run (in a folder of its own)."""
    return resume_lock.claimed(RESUME_DIR, config_key(cfg), this.index, separate=not cfg.trainer.resume)


def locate(cfg: DictConfig, strategy: tf.distribute.Strategy, this: Worker, output_dir: pathlib.Path,
           directory: pathlib.Path) -> Start:
    """How this config's run starts from `directory` (its claimed resume folder), as trainer.resume
    asks. Under multi_worker each worker keeps its own resume folder (the chief's is the plain key),
    so workers need no shared disk, and they start together from the last epoch all of them saved."""
    # A non-chief worker's weights never go over the chief's (workers may share hydra.run.dir).
    fresh = Start(run_dir=output_dir if this.chief else output_dir / f"worker{this.index}", directory=directory)
    start = _saved(cfg.trainer, directory) or fresh
    start = dataclasses.replace(start, run_dir=start.run_dir or fresh.run_dir)
    start = _restorable(start, fresh)
    return rewound(start, agreed_epoch(strategy, start.epoch), fresh)


def read(directory: pathlib.Path) -> Optional[Start]:
    """The resume point saved in `directory`, if any; one that cannot be read is a UserError."""
    state = resume_state.load(directory)
    if state is None:
        return None
    run_dir = state.pop("run_dir", None)
    return Start(**state, run_dir=pathlib.Path(run_dir) if run_dir else None, directory=directory)


def _saved(trainer: DictConfig, directory: pathlib.Path) -> Optional[Start]:
    """The resume point trainer.resume and trainer.resume_run ask for; None: start afresh."""
    saved = read(directory) if trainer.resume else None
    if saved is None:
        _empty(directory)  # trainer.resume=false, or a state.json deleted: no stale checkpoints either
    wanted = trainer.resume_run
    if wanted and (saved is None or saved.run_id not in (wanted, None)):  # None: a non-chief worker's
        raise UserError(f"trainer.resume_run={wanted}: no resume point of that run for this config in {directory}; "
                        "resume with the command that started it, or start afresh with trainer.resume=false")
    return saved


def _empty(directory: pathlib.Path) -> None:
    """Forgets the resume point in `directory`, but not the lock this process holds on it."""
    for entry in directory.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        elif entry.name != resume_lock.LOCK_FILE:
            entry.unlink()


def _restorable(start: Start, fresh: Start) -> Start:
    """The start, or, when its latest checkpoint is missing or damaged, the one before it (the
    manager keeps two): state.json describes the latest, so the start is rewound by an epoch."""
    if start.checkpoint is None or _readable(start.checkpoint):
        return start
    before = rewound(start, start.epoch - 1, fresh)
    if before.checkpoint is not None and not _readable(before.checkpoint):
        raise resume_state.unreadable(start.directory, f"its last two checkpoints, {start.checkpoint} and "
                                      f"{before.checkpoint}")
    log.warning("checkpoint %s cannot be read; %s", start.checkpoint,
                f"resuming from the one before it, after epoch {before.epoch}" if before.resumed else "starting afresh")
    return before


def _readable(checkpoint: str) -> bool:
    """Whether every tensor of the checkpoint reads back whole (the index alone does not show a
    missing or truncated data file; TensorFlow's checksums show a damaged one)."""
    try:
        reader = tf.train.load_checkpoint(checkpoint)
        for name in reader.get_variable_to_dtype_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, IndexError):  # IndexError: a data file cut short
        return False
    return True


def rewound(start: Start, epoch: int, fresh: Start) -> Start:
    """The start as it stood after `epoch`, which must be this one or the one before (the checkpoint
    manager keeps both): workers killed between their saves resume together from the epoch all of
    them saved. Counters of callbacks stay as saved last (off by at most that epoch)."""
    if epoch == start.epoch:
        return start
    if epoch == 0:
        return fresh
    if epoch != start.epoch - 1:
        raise UserError(f"the workers' resume points are {start.epoch - epoch} epochs apart; "
                        "start afresh with trainer.resume=false on every worker")
    return dataclasses.replace(
        start, epoch=epoch, stopped=False, history={key: values[:epoch] for key, values in start.history.items()},
        checkpoint=re.sub(r"ckpt-\d+$", f"ckpt-{epoch}", start.checkpoint))


class ResumePoint:
    """Saves the resume point at the end of every epoch (runner/training/loop.py EpochHooks says
    when), and restores a resumed run's weights, optimizer state and callback counters."""

    def __init__(self, start: Start, model: keras.Model, optimizer, run_id: Optional[str]):
        self.start = start
        self._run_id = run_id
        self._epoch = tf.Variable(start.epoch, dtype=tf.int64, trainable=False)
        self._checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=self._epoch)
        self._manager = tf.train.CheckpointManager(self._checkpoint, str(start.directory / "checkpoints"),
                                                   max_to_keep=2)
        if start.checkpoint:
            # The optimizer must be built: its slots (momentum) are restored, not created later.
            self._checkpoint.restore(start.checkpoint).assert_existing_objects_matched()

    def restore_counters(self, callbacks: list[keras.callbacks.Callback], model: keras.Model) -> None:
        """After the callbacks reset themselves (on_train_begin): a resumed run sets them back."""
        if self.start.resumed:
            for callback, counters in zip(_counted(callbacks), self.start.counters):
                vars(callback).update(counters)
            model.stop_training = self.start.stopped

    def save(self, epoch: int, history: dict[str, list[float]], callbacks: list[keras.callbacks.Callback],
             model: keras.Model) -> None:
        self._epoch.assign(epoch + 1)
        path = self._manager.save(checkpoint_number=epoch + 1)
        counters = [{name: _plain(getattr(callback, name)) for name in COUNTERS[_kind(callback)]}
                    for callback in _counted(callbacks)]
        state = {"run_id": self._run_id, "epoch": epoch + 1, "history": history, "checkpoint": path,
                 "run_dir": str(self.start.run_dir), "counters": counters, "stopped": bool(model.stop_training)}
        resume_state.write(self.start.directory, json.dumps(state, default=_plain))

    def finished(self) -> None:
        """The run is complete: the same command now starts a new one."""
        shutil.rmtree(self.start.directory, ignore_errors=True)


def _counted(callbacks: list[keras.callbacks.Callback]) -> list[keras.callbacks.Callback]:
    return [callback for callback in callbacks if _kind(callback) in COUNTERS]


def _kind(callback: keras.callbacks.Callback) -> Optional[type]:
    """The class of COUNTERS that `callback` is an instance of (the run's checkpoints subclass Keras's)."""
    return next((kind for kind in COUNTERS if isinstance(callback, kind)), None)


def missing_epochs(client: mlflow.MlflowClient, start: Start) -> dict[int, dict[str, float]]:
    """Epochs the resume point holds that the run does not (killed between the checkpoint and the log)."""
    logged = {metric.step for metric in client.get_metric_history(start.run_id, "val_top1")}
    return {epoch: {key: values[epoch] for key, values in start.history.items() if epoch < len(values)}
            for epoch in range(start.epoch) if epoch not in logged}


def _plain(value):
    """A counter as JSON keeps it: Keras holds some as NumPy or tensor scalars (inf stays inf)."""
    return float(value) if isinstance(value, float) or hasattr(value, "dtype") else value

