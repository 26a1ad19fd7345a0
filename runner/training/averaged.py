"""trainer.ema: the exponential moving average of the weights (Polyak and Juditsky 1992), what a run
evaluates, checkpoints and saves, while training goes on from the raw weights.

The average is Keras's own (`use_ema` of the optimizer, runner/training/optim.py): inside
`optimizer.apply`, after each update, on every replica, average = decay * average + (1 - decay) * w,
starting from the weights after the first update. It covers the trainable variables only: batch
norm's moving mean and variance are not averaged again (timm's ModelEmaV2 does average them), since
they are already a moving average (momentum 0.99) of the statistics training produced, and a
resumed run restores them as they are.

Keras's SwapEMAWeights swaps by adding and subtracting (a + b - b), which rounds: the raw weights
that come back differ in their last bits, and a resumed run would no longer train as an
uninterrupted one does. The swap here copies, on each replica's copy of each variable.
"""

import contextlib
from typing import Iterator

import keras
import tensorflow as tf


def _inner(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The optimizer that keeps the average: a LossScaleOptimizer's (mixed_float16) inner one."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def averages(optimizer: keras.optimizers.Optimizer) -> bool:
    return bool(_inner(optimizer).use_ema)


def _pairs(optimizer: keras.optimizers.Optimizer) -> list[tuple[tf.Variable, tf.Variable]]:
    """(model variable, its average) for every variable the optimizer was built on (frozen rows too).
    Keras keeps both lists private; its own SwapEMAWeights reads the same two, and
    tests/test_ema_and_accumulation.py fails by name if a Keras release renames or drops one."""
    inner = _inner(optimizer)
    return [(variable.value, average.value)
            for variable, average in zip(inner._trainable_variables, inner._model_variables_moving_average)]


def _swap(optimizer: keras.optimizers.Optimizer, strategy: tf.distribute.Strategy) -> None:
    def exchange(variable, average):  # one replica's copies: read, then overwrite both
        raw = variable.read_value()
        variable.assign(average.read_value())
        average.assign(raw)

    with strategy.scope():
        for variable, average in _pairs(optimizer):
            strategy.extended.update(variable, exchange, args=(average,), group=False)


@contextlib.contextmanager
def averaged_weights(optimizer: keras.optimizers.Optimizer, strategy: tf.distribute.Strategy) -> Iterator[None]:
    """Inside the block the model holds the average (the raw weights wait in the optimizer's
    variables); after it, the raw weights again, bit for bit. Without trainer.ema: the raw weights."""
    if not averages(optimizer):
        yield
        return
    _swap(optimizer, strategy)
    try:
        yield
    finally:
        _swap(optimizer, strategy)


def keep_averaged_weights(optimizer: keras.optimizers.Optimizer, strategy: tf.distribute.Strategy) -> None:
    """The model takes the average for good (training is over): the final evaluation and the saved
    model.keras see it. The resume point on disk still holds the raw weights and the average."""
    if averages(optimizer):
        with strategy.scope():
            for variable, average in _pairs(optimizer):
                strategy.extended.update(variable, lambda mine, value: mine.assign(value), args=(average,),
                                         group=False)
