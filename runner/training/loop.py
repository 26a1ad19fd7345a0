"""The epoch loop over a prepared session: distributed steps, then at every epoch's end the hooks,
always in the order of `EpochHooks`.

One loop over `strategy.run` serves every tf.distribute strategy (Keras 3's `fit` fails under
MultiWorkerMirroredStrategy, keras-team/keras#20585); Keras's own callbacks still draw the progress
bar and keep checkpoints, early stopping and the plateau schedule.
"""

import dataclasses
import math
import time
from typing import Optional, Protocol

import keras
import tensorflow as tf

from runner import progress
from runner.mistakes.errors import UserError
from runner.session.parts import Session
from runner.session.strategy import distributed
from runner.training import steps
from runner.training.averaged import averaged_weights, keep_averaged_weights
from runner.training.evaluation import Evaluation, evaluate
from runner.training.freeze import freeze, thaws_at
from runner.training.resume import Start
from runner.training.stops import DeferredStops, stop_if_requested

History = dict[str, list[float]]


class Diverged(UserError):
    """The loss is no longer a number; the message says where and what to change."""


class SavesEpochs(Protocol):
    start: Start  # where the run starts: its resume point's epoch and history

    def restore_counters(self, callbacks: list[keras.callbacks.Callback], model: keras.Model) -> None: ...

    def save(self, epoch: int, history: History, callbacks: list[keras.callbacks.Callback],
             model: keras.Model) -> None: ...


class RecordsEpochs(Protocol):
    def log_epoch(self, epoch: int, logs: dict[str, float]) -> None: ...


@dataclasses.dataclass
class EpochHooks:
    """What the loop calls at the end of every epoch, in this order, which is the contract:

    1. `callbacks` (Keras's: best and last weights, early stopping, the plateau schedule) see the
       epoch's logs, so their counters move; with trainer.ema the model holds the average meanwhile
       (runner/training/averaged.py), which the logs' val_* measured;
    2. `resume_point.save` then holds the epoch, those counters and the raw weights (runner/training/resume.py);
    3. `recorder.log_epoch` records it in MLflow: an epoch the run shows is always one the resume
       point holds, and an epoch lost between 2 and 3 (a kill) is logged when the run resumes.
    At the start, after the callbacks reset themselves, `resume_point.restore_counters` sets them back.
    """

    callbacks: list[keras.callbacks.Callback]
    resume_point: Optional[SavesEpochs] = None
    recorder: Optional[RecordsEpochs] = None


@dataclasses.dataclass
class Trained:
    history: History  # per-epoch logs, the resumed run's earlier epochs included
    last_evaluation: Optional[Evaluation]  # the last epoch's centre-crop pass; None when no epoch ran


def fit(session: Session, hooks: EpochHooks) -> Trained:
    """Train from where the resume point starts (without one: epoch 0) up to trainer.epochs, or until
    early stopping or a stop request (SIGTERM, Ctrl-C: at the next step boundary, runner/training/stops.py)."""
    with DeferredStops():
        return _fit(session, hooks, hooks.resume_point.start if hooks.resume_point else Start())


def _fit(session: Session, hooks: EpochHooks, start: Start) -> Trained:
    cfg, model = session.cfg, session.model
    freeze(session.part.built, cfg, start.epoch)  # a resumed run may be past the thaw
    train_steps, average_statistics = _training_functions(session)
    eval_step = steps.make_eval_step(session)
    callback_list = keras.callbacks.CallbackList(hooks.callbacks, add_progbar=True, model=model,
                                                 verbose=progress.verbosity(),
                                                 epochs=cfg.trainer.epochs, steps=session.training.steps_per_epoch)
    model.optimizer = session.training.optimizer  # what ReduceLROnPlateau and checkpoints reach for
    model.stop_training = False
    history = {key: list(values) for key, values in start.history.items()}
    _replay_epoch_seeds(session, start.epoch)
    callback_list.on_train_begin()
    if hooks.resume_point:
        hooks.resume_point.restore_counters(hooks.callbacks, model)
    last = None
    for epoch in range(start.epoch, cfg.trainer.epochs):
        if model.stop_training:  # early stopping, or a resumed run that had stopped before its kill
            break
        if thaws_at(cfg, epoch):  # the frozen rows train from here: the steps see other variables
            freeze(session.part.built, cfg, epoch)
            train_steps, average_statistics = _training_functions(session)
        callback_list.on_epoch_begin(epoch)
        logs, seconds = _train_epoch(session, train_steps, callback_list, epoch)
        if average_statistics:
            average_statistics()
        # trainer.ema: the average is what is evaluated and what the best and last checkpoints hold; the
        # resume point holds the raw weights (and the average, in the optimizer), from which training goes on.
        with averaged_weights(session.training.optimizer, session.strategy):
            last = evaluate(session, session.splits.val, eval_step)
            logs.update({f"val_{key}": value for key, value in last.metrics.items()})
            logs.update(epoch_seconds=seconds,
                        images_per_second=session.training.steps_per_epoch * cfg.trainer.batch_size / seconds)
            callback_list.on_epoch_end(epoch, logs)
        _record_epoch(hooks, model, epoch, logs, history)
        stop_if_requested()  # after the epoch's resume point and record: nothing of it is lost
    keep_averaged_weights(session.training.optimizer, session.strategy)  # what is evaluated last and saved
    callback_list.on_train_end()
    return Trained(history, last)


def _training_functions(session: Session):
    """The training steps and, with several replicas, the average of the batch-norm statistics: both
    capture the model's (non-)trainable variables when they are made."""
    model, strategy = session.model, session.strategy
    several = strategy.num_replicas_in_sync > 1 and model.non_trainable_variables
    return steps.make_train_steps(session), (steps.make_statistics_average(model, strategy) if several else None)


def _record_epoch(hooks: EpochHooks, model, epoch: int, logs: dict, history: History) -> None:
    """After the callbacks (EpochHooks' order): the epoch in the history, the resume point, the record."""
    for key, value in logs.items():
        history.setdefault(key, []).append(value)
    if hooks.resume_point:
        hooks.resume_point.save(epoch, history, hooks.callbacks, model)
    if hooks.recorder:
        hooks.recorder.log_epoch(epoch, logs)


def _replay_epoch_seeds(session: Session, epochs_done: int) -> None:
    """Each new iterator over the training set draws the next epoch's shuffle and crop seeds; a
    resumed run draws those of the epochs it has done, so its next epoch sees what it would have."""
    for _ in range(epochs_done):
        iter(distributed(session.strategy, session.splits.train))


def _train_epoch(session: Session, train_steps, callback_list, epoch: int) -> tuple[dict, float]:
    iterator = iter(distributed(session.strategy, session.splits.train))
    totals = {key: 0.0 for key in (*steps.SUMS, steps.RATE)}
    start = time.perf_counter()
    step = 0
    while step < session.training.steps_per_epoch:
        count = min(session.training.steps_per_call, session.training.steps_per_epoch - step)
        callback_list.on_train_batch_begin(step)
        for key, value in train_steps(iterator, tf.constant(count)).items():
            totals[key] += float(value)
        step += count
        _stop_if_diverged(totals["loss"], epoch, step, count)
        stop_if_requested()  # SIGTERM from a scheduler, noted by runner/training/stops.py
        callback_list.on_train_batch_end(step - 1, steps.averages(totals))
    # lr: the mean rate of the epoch's updates, what it trained with (a warm-up from 0 shows its climb, not its 0).
    logs = steps.averages(totals) | {"lr": totals[steps.RATE] / step}
    return logs, time.perf_counter() - start


def _stop_if_diverged(loss_sum: float, epoch: int, step: int, count: int) -> None:
    """A NaN or infinite loss stops the run now: every later step would only spread it."""
    if not math.isfinite(loss_sum):
        steps_run = f"step {step}" if count == 1 else f"steps {step - count + 1}-{step}"
        raise Diverged(f"the training loss became {loss_sum} at epoch {epoch + 1}, {steps_run}: "
                       "lower optimizer.lr, add schedule.warmup_epochs, or use a smaller trainer.batch_size")
