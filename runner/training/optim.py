"""Optimizer and learning-rate schedule from the optimizer/ and schedule/ config groups."""

import keras
from omegaconf import DictConfig

from runner.errors import UserError


def make_optimizer(cfg: DictConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    lr = learning_rate(cfg, steps_per_epoch)
    opt = cfg.optimizer
    # SGD and Adam take weight decay as the L2 term of the loss (l2_coefficient); AdamW decouples it.
    makers = {
        "sgd": lambda: keras.optimizers.SGD(lr, momentum=opt.momentum, nesterov=opt.nesterov),
        "adam": lambda: keras.optimizers.Adam(lr),
        "adamw": lambda: keras.optimizers.AdamW(lr, weight_decay=opt.weight_decay),
    }
    if opt.name not in makers:
        raise UserError(f"optimizer.name: unknown optimizer {opt.name!r}; valid: {', '.join(makers)}")
    optimizer = makers[opt.name]()
    if keras.config.dtype_policy().name == "mixed_float16":  # runner.training.strategy.set_precision chose it
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def l2_coefficient(cfg: DictConfig) -> float:
    """The papers' weight decay: wd * w added to the gradient, inside the momentum (AlexNet, Section 5).

    Keras's own `weight_decay` is decoupled (w -= lr * wd * w): with momentum 0.9 it regularises
    about ten times less than the papers' 5e-4 did, so SGD and Adam get the L2 term instead.
    """
    return 0.0 if cfg.optimizer.name == "adamw" else cfg.optimizer.weight_decay


def learning_rate(cfg: DictConfig, steps_per_epoch: int):
    """A per-step schedule, or a plain float for schedules driven by callbacks (plateau)."""
    schedule, base = cfg.schedule, cfg.optimizer.lr
    total_steps = cfg.trainer.epochs * steps_per_epoch
    warmup_steps = min(schedule.warmup_epochs * steps_per_epoch, total_steps - 1)
    if schedule.name in ("constant", "plateau"):
        return base
    if schedule.name == "cosine":
        # Linear warm-up from 0 to lr, then cosine decay to min_lr (Goyal et al. 2017; Loshchilov and Hutter 2017).
        return keras.optimizers.schedules.CosineDecay(
            0.0 if warmup_steps else base, decay_steps=max(total_steps - warmup_steps, 1),
            alpha=schedule.min_lr / base if base else 0.0, warmup_target=base if warmup_steps else None,
            warmup_steps=warmup_steps)
    if schedule.name == "step":
        # The schedule sees the number of steps taken so far: epoch e starts after e * steps_per_epoch.
        boundaries = [epoch * steps_per_epoch - 1 for epoch in schedule.step_epochs]
        values = [base * schedule.decay_rate**index for index in range(len(boundaries) + 1)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values) if boundaries else base
    raise UserError(f"schedule.name: unknown schedule {schedule.name!r}; valid: constant, step, cosine, plateau")


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
