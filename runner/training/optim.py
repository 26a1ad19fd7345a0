"""Optimizer and learning-rate schedule from the optimizer/ and schedule/ config groups.

Each name is one row of OPTIMIZERS or SCHEDULES: runner.training.checks validates the config's names against
the same tables that make the optimizer, its per-step rate and the callbacks a schedule needs.
"""

import dataclasses
from typing import Any, Callable

import keras
from omegaconf import DictConfig

from runner.config.bounds import Choices
from runner.mistakes.errors import UserError


@dataclasses.dataclass(frozen=True)
class Optimizer:
    # (rate or schedule, cfg.optimizer, **Keras's options common to every optimizer: the average's)
    make: Callable[..., keras.optimizers.Optimizer]
    decoupled_decay: bool = False  # weight_decay is the optimizer's own (AdamW), not the loss's L2 term


# SGD and Adam take weight decay as the L2 term of the loss (l2_coefficient); AdamW decouples it.
OPTIMIZERS = Choices("optimizer.name", "optimizer", {
    "sgd": Optimizer(lambda lr, opt, **common: keras.optimizers.SGD(lr, momentum=opt.momentum,
                                                                   nesterov=opt.nesterov, **common)),
    "adam": Optimizer(lambda lr, opt, **common: keras.optimizers.Adam(lr, **common)),
    "adamw": Optimizer(lambda lr, opt, **common: keras.optimizers.AdamW(lr, weight_decay=opt.weight_decay, **common),
                       decoupled_decay=True),
})


def make_optimizer(cfg: DictConfig, steps_per_epoch: int, precision: str) -> keras.optimizers.Optimizer:
    """`precision` is the dtype policy the model was built under: float16 needs loss scaling."""
    optimizer = OPTIMIZERS.of(cfg.optimizer.name).make(learning_rate(cfg, steps_per_epoch), cfg.optimizer,
                                                       **averaging(cfg.trainer.ema))
    if precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def averaging(decay: float | None) -> dict[str, Any]:
    """Keras's options for trainer.ema (runner/training/averaged.py): the average updated after every
    update, never copied over the weights while training (the loop swaps it in to evaluate)."""
    if not decay:
        return {}
    if decay >= 1:
        raise UserError(f"trainer.ema={decay}: expected a decay in [0, 1), e.g. 0.9999; null or 0: off")
    return {"use_ema": True, "ema_momentum": decay, "ema_overwrite_frequency": None}


def l2_coefficient(cfg: DictConfig) -> float:
    """The papers' weight decay: wd * w added to the gradient, inside the momentum (AlexNet, Section 5).

    Keras's own `weight_decay` is decoupled (w -= lr * wd * w): with momentum 0.9 it regularises
    about ten times less than the papers' 5e-4 did, so SGD and Adam get the L2 term instead.
    """
    return 0.0 if OPTIMIZERS.of(cfg.optimizer.name).decoupled_decay else cfg.optimizer.weight_decay


def _constant(schedule: DictConfig, base: float, steps_per_epoch: int, total_steps: int) -> float:
    return base


def _cosine(schedule: DictConfig, base: float, steps_per_epoch: int, total_steps: int):
    # Linear warm-up from 0 to lr, then cosine decay to min_lr (Goyal et al. 2017; Loshchilov and Hutter 2017).
    warmup_steps = min(schedule.warmup_epochs * steps_per_epoch, total_steps - 1)
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup_steps else base, decay_steps=max(total_steps - warmup_steps, 1),
        alpha=schedule.min_lr / base if base else 0.0, warmup_target=base if warmup_steps else None,
        warmup_steps=warmup_steps)


def _step(schedule: DictConfig, base: float, steps_per_epoch: int, total_steps: int):
    # The schedule sees the number of steps taken so far: epoch e starts after e * steps_per_epoch.
    boundaries = [epoch * steps_per_epoch - 1 for epoch in schedule.step_epochs]
    values = [base * schedule.decay_rate**index for index in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values) if boundaries else base


def _reduce_on_plateau(schedule: DictConfig) -> list[keras.callbacks.Callback]:
    # AlexNet's rule, applied after each epoch's validation: the rate is a plain float the callback sets.
    return [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", mode="min", factor=schedule.decay_rate,
                                              patience=schedule.patience, min_lr=schedule.min_lr)]


@dataclasses.dataclass(frozen=True)
class Schedule:
    rate: Callable[[DictConfig, float, int, int], Any]  # (cfg.schedule, lr, steps per epoch, total steps)
    callbacks: Callable[[DictConfig], list[keras.callbacks.Callback]] = lambda schedule: []


SCHEDULES = Choices("schedule.name", "schedule", {
    "constant": Schedule(_constant),
    "step": Schedule(_step),
    "cosine": Schedule(_cosine),
    "plateau": Schedule(_constant, callbacks=_reduce_on_plateau),
})


def learning_rate(cfg: DictConfig, steps_per_epoch: int):
    """A per-step schedule, or a plain float for schedules driven by callbacks (plateau)."""
    schedule = SCHEDULES.of(cfg.schedule.name)
    return schedule.rate(cfg.schedule, cfg.optimizer.lr, steps_per_epoch, cfg.trainer.epochs * steps_per_epoch)


def schedule_callbacks(cfg: DictConfig) -> list[keras.callbacks.Callback]:
    """The Keras callbacks cfg.schedule needs beside its per-step rate (plateau: ReduceLROnPlateau)."""
    return SCHEDULES.of(cfg.schedule.name).callbacks(cfg.schedule)
