"""The epoch loop: distributed steps, Keras callbacks (progress bar, early stopping, checkpoints,
plateau decay, MLflow), and evaluation with centre crops and AlexNet's ten crops."""

import dataclasses
import math
import pathlib
import time
from typing import Optional

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig

from runner.training import steps
from runner.errors import UserError
from runner.training.optim import current_learning_rate, l2_coefficient
from runner.training.strategy import steps_per_execution, uses_xla
from runner.training.stops import stop_if_requested


class Diverged(UserError):
    """The loss is no longer a number; the message says where and what to change."""


@dataclasses.dataclass
class Evaluation:
    metrics: dict[str, float]  # loss, top1, top5
    labels: np.ndarray
    predicted: np.ndarray


def averages(totals) -> dict[str, float]:
    count = max(float(totals["count"]), 1.0)
    return {key: float(totals[key]) / count for key in ("loss", "top1", "top5")}


def fit(cfg: DictConfig, model, optimizer, splits, strategy, callbacks, run_dir: pathlib.Path,
        initial_epoch: int = 0, history: Optional[dict[str, list[float]]] = None,
        standard: Optional[list[keras.callbacks.Callback]] = None) -> dict[str, list[float]]:
    """Train up to trainer.epochs (or until a callback stops it); returns the per-epoch history.

    `standard` callbacks (checkpoints, early stopping, plateau; made here when None) run before
    `callbacks`, so those see this epoch's counters. A resumed run passes the epochs it has done and
    their history; the optimizer must already be built then (see `build_optimizer`), with its
    restored state."""
    trainer = cfg.trainer
    objective = steps.Objective(cfg.data.num_classes, trainer.label_smoothing, cfg.model.aux_loss_weight,
                                l2_coefficient(cfg))
    steps_per_epoch = epoch_steps(cfg, splits)
    per_call = max(1, min(steps_per_execution(trainer), steps_per_epoch))
    train_steps = steps.make_train_steps(model, optimizer, objective, strategy, trainer.batch_size,
                                         xla=uses_xla(trainer, strategy), normalise=splits.normalise)
    eval_step = steps.make_eval_step(model, objective, strategy, splits.normalise)
    several = strategy.num_replicas_in_sync > 1 and model.non_trainable_variables
    average_statistics = steps.make_statistics_average(model, strategy) if several else None
    standard = standard_callbacks(cfg, run_dir) if standard is None else standard
    callback_list = keras.callbacks.CallbackList(standard + callbacks, add_progbar=True, model=model,
                                                 verbose=1, epochs=trainer.epochs, steps=steps_per_epoch)
    build_optimizer(model, optimizer, strategy)
    model.optimizer = optimizer  # what ReduceLROnPlateau and checkpoints reach for
    model.stop_training = False
    history = {key: list(values) for key, values in (history or {}).items()}
    _replay_epoch_seeds(splits, strategy, initial_epoch)
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, trainer.epochs):
        if model.stop_training:  # early stopping, or a resumed run that had stopped before its kill
            break
        callback_list.on_epoch_begin(epoch)
        lr = current_learning_rate(optimizer)  # the rate the epoch starts with
        logs, seconds = _train_epoch(splits, strategy, train_steps, steps_per_epoch, per_call, callback_list, epoch)
        if average_statistics:
            average_statistics()
        logs.update({f"val_{k}": v for k, v in evaluate(splits.val, strategy, eval_step).metrics.items()})
        logs.update(lr=lr, epoch_seconds=seconds,
                    images_per_second=steps_per_epoch * trainer.batch_size / seconds)
        callback_list.on_epoch_end(epoch, logs)
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        stop_if_requested()  # after the epoch's resume point and record: nothing of it is lost
    callback_list.on_train_end()
    return history


def build_optimizer(model, optimizer, strategy) -> None:
    """Slot variables (momentum) must exist before the step loop: none may be created in a
    tf.while_loop under a distribution strategy, and a resumed run restores them."""
    if not optimizer.built:
        with strategy.scope():
            optimizer.build(model.trainable_variables)


def _replay_epoch_seeds(splits, strategy, epochs_done: int) -> None:
    """Each new iterator over the training set draws the next epoch's shuffle and crop seeds; a
    resumed run draws those of the epochs it has done, so its next epoch sees what it would have."""
    for _ in range(epochs_done):
        iter(distributed(strategy, splits.train))


def distributed(strategy, dataset):
    """The dataset across the strategy's replicas. Under multi_worker each worker already holds only
    its shard, batched per replica (runner.data.load with a Shard): its replicas take turns on it."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return strategy.distribute_datasets_from_function(lambda context: dataset)
    return strategy.experimental_distribute_dataset(dataset)


def epoch_steps(cfg: DictConfig, splits) -> int:
    steps_per_epoch = splits.steps_per_epoch
    if cfg.trainer.steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.trainer.steps_per_epoch)
    return steps_per_epoch


def _train_epoch(splits, strategy, train_steps, steps_per_epoch, per_call, callback_list, epoch):
    iterator = iter(distributed(strategy, splits.train))
    totals = {key: 0.0 for key in steps.SUMS}
    start = time.perf_counter()
    step = 0
    while step < steps_per_epoch:
        count = min(per_call, steps_per_epoch - step)
        callback_list.on_train_batch_begin(step)
        for key, value in train_steps(iterator, tf.constant(count)).items():
            totals[key] += float(value)
        step += count
        _stop_if_diverged(totals["loss"], epoch, step, count)
        stop_if_requested()  # SIGTERM from a scheduler, noted by the run (runner/training/stops.py)
        callback_list.on_train_batch_end(step - 1, averages(totals))
    return averages(totals), time.perf_counter() - start


def _stop_if_diverged(loss_sum: float, epoch: int, step: int, count: int) -> None:
    """A NaN or infinite loss stops the run now: every later step would only spread it."""
    if not math.isfinite(loss_sum):
        steps_run = f"step {step}" if count == 1 else f"steps {step - count + 1}-{step}"
        raise Diverged(f"the training loss became {loss_sum} at epoch {epoch + 1}, {steps_run}: "
                       "lower optimizer.lr, add schedule.warmup_epochs, or use a smaller trainer.batch_size")


def evaluate(dataset, strategy, eval_step) -> Evaluation:
    totals = {key: 0.0 for key in steps.SUMS}
    labels, predicted = [], []
    for images, batch_labels in distributed(strategy, dataset):
        batch_totals, batch_predicted, batch_true = eval_step(images, batch_labels)
        for key, value in batch_totals.items():
            totals[key] += float(value)
        predicted.append(batch_predicted.numpy())
        labels.append(batch_true.numpy())
    return Evaluation(averages(totals), np.concatenate(labels), np.concatenate(predicted))


def final_evaluation(cfg: DictConfig, model, splits, strategy) -> tuple[dict[str, float], Evaluation]:
    """eval_top1/eval_top5 on centre crops, and with eval.ten_crop the ten-crop metrics."""
    objective = steps.Objective(cfg.data.num_classes, 0.0, cfg.model.aux_loss_weight)
    centre = evaluate(splits.val, strategy, steps.make_eval_step(model, objective, strategy, splits.normalise))
    metrics = {"eval_top1": centre.metrics["top1"], "eval_top5": centre.metrics["top5"]}
    if splits.val_ten_crop is not None:
        ten_crop_step = steps.make_eval_step(model, objective, strategy, splits.normalise, ten_crop=True)
        ten = evaluate(splits.val_ten_crop, strategy, ten_crop_step)
        metrics.update(eval_top1_10crop=ten.metrics["top1"], eval_top5_10crop=ten.metrics["top5"])
    return metrics, centre


def standard_callbacks(cfg: DictConfig, run_dir: pathlib.Path) -> list[keras.callbacks.Callback]:
    """Best and last weights in run_dir/checkpoints, early stopping and the plateau schedule, as configured."""
    checkpoints = run_dir / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    callbacks = [
        keras.callbacks.ModelCheckpoint(checkpoints / "best.weights.h5", monitor="val_top1", mode="max",
                                        save_best_only=True, save_weights_only=True),
        keras.callbacks.ModelCheckpoint(checkpoints / "last.weights.h5", save_weights_only=True),
    ]
    if cfg.trainer.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_top1", mode="max",
                                                       patience=cfg.trainer.early_stopping_patience))
    if cfg.schedule.name == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", mode="min",
                                                           factor=cfg.schedule.decay_rate,
                                                           patience=cfg.schedule.patience,
                                                           min_lr=cfg.schedule.min_lr))
    return callbacks
