"""Refuse, before any layer is built or anything recorded, a model whose training cannot fit in memory.

The need is estimated from the plan (builders.estimate: shapes alone, no layer built), per memory:
* weights, at the precision policy's variable dtype: each trainable one 1 + 1 + slots times (the
  weight, its gradient, and the optimizer's slots, counted on the configured optimizer itself:
  momentum's 1, Adam's 2); frozen ones (batch norm's moving statistics) once. Under mixed precision
  each step also casts the trainable weights to the compute dtype, and keeps the casts for the
  backward pass.
* one batch (a replica's share), at the compute dtype: the input images and the activations the
  backward pass needs from the forward one (builders/tally.py says which, after TensorFlow's
  gradients), and the gradients into and out of the largest layer, which the backward pass holds
  while it works through that layer.
Not counted: TensorFlow's own working memory (convolution scratch space, the input pipeline's
buffers). A model that passes can still run out of memory; one refused here cannot fit.

Which memory: on GPUs every replica holds its own weights and share of the batch, against the
smallest GPU's memory (TensorFlow's limit for it); on a CPU the replicas of this machine share its
available memory (psutil).
"""

import dataclasses
import math
from typing import Any

import keras
import numpy as np
import psutil
import tensorflow as tf
from omegaconf import DictConfig
from tensorflow.python.client import device_lib

import builders
from builders.sizes import Estimate
from runner.mistakes.errors import UserError
from runner.session.strategy import worker
from runner.training.optim import make_optimizer

GIB = 2**30
PROBE_SHAPE = (3, 5, 7)  # a shape no optimizer's own variables (its step, its rate) have


@dataclasses.dataclass(frozen=True)
class Limit:
    bytes: int
    where: str  # what it is, as the refusal says it: "of memory available"


@dataclasses.dataclass(frozen=True)
class Need:
    """What training needs of one memory, in bytes."""

    weights: int  # with their gradients and optimizer slots
    batch: int  # one batch's activations, input images and the backward pass's working set
    per_row: list[int]  # each row's weights and activations, in the order of the plan
    batch_size: int  # images per replica
    slots: int

    @property
    def total(self) -> int:
        return self.weights + self.batch


def check_memory(cfg: DictConfig, strategy: tf.distribute.Strategy, precision: str, spec: dict[str, Any],
                 training: bool = True) -> None:
    """Raise UserError naming the row that makes the model too large, the estimate and the limit
    (training false: an evaluation's forward passes alone)."""
    if cfg.trainer.skip_memory_check:
        return
    sized = builders.estimate(spec)
    need = training_need(cfg, strategy, precision, sized, training)
    limit = memory_limit()
    if need.total > limit.bytes:
        raise UserError(_too_large(sized, need, limit))


def training_need(cfg: DictConfig, strategy: tf.distribute.Strategy, precision: str, sized: Estimate,
                  training: bool = True) -> Need:
    """The module's count: `copies` is how many replicas share one memory (all of a CPU's, one per GPU).
    Without training (an evaluation) each weight is held once and no activation is kept for a backward
    pass; the largest layer's input and output still are."""
    policy = keras.DTypePolicy(precision)
    weight_bytes, value_bytes = _size_of(policy.variable_dtype), _size_of(policy.compute_dtype)
    slots = optimizer_slots(cfg, precision) if training else 0
    cast = value_bytes if policy.compute_dtype != policy.variable_dtype else 0
    # trainer.grad_accumulation: one pass holds a k-th of the batch's activations, and the passes'
    # gradients are summed in one more weight-sized buffer.
    passes = cfg.trainer.grad_accumulation if training else 1
    gradients = 2 if passes > 1 else 1
    per_trainable = weight_bytes * (1 + gradients + slots) + cast if training else weight_bytes + cast
    images = math.ceil(cfg.trainer.batch_size / passes / strategy.num_replicas_in_sync)
    copies = 1 if tf.config.list_logical_devices("GPU") else strategy.num_replicas_in_sync // worker(strategy).count
    weights = [copies * ((row.params - row.frozen) * per_trainable + row.frozen * weight_bytes) for row in sized.rows]
    activations = [copies * images * value_bytes * row.kept * training for row in sized.rows]
    largest = max((row.largest for row in sized.rows), default=0)
    # The batch of input images, and the gradients into and out of the largest layer.
    working = copies * images * value_bytes * (math.prod(sized.input_shape) + 2 * largest)
    return Need(sum(weights), sum(activations) + working, [w + a for w, a in zip(weights, activations)], images, slots)


def optimizer_slots(cfg: DictConfig, precision: str) -> int:
    """Variables the configured optimizer keeps per weight, counted on a probe weight it builds for."""
    optimizer = make_optimizer(cfg, steps_per_epoch=1, precision=precision)
    optimizer.build([keras.Variable(np.zeros(PROBE_SHAPE, "float32"), name="probe")])
    return sum(1 for variable in optimizer.variables if tuple(variable.shape) == PROBE_SHAPE)


def memory_limit() -> Limit:
    """The smallest GPU's memory where training runs on GPUs, else the machine's available memory."""
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        # TensorFlow's own figure: what its allocator may use of each device.
        limits = [device.memory_limit for device in device_lib.list_local_devices() if device.device_type == "GPU"]
        return Limit(min(limits), "of memory on the smallest GPU")
    return Limit(psutil.virtual_memory().available, "of memory available")


def _too_large(sized: Estimate, need: Need, limit: Limit) -> str:
    total = f"about {_gib(need.total)}, more than the {_gib(limit.bytes)} {limit.where}"
    advice = "or pass trainer.skip_memory_check=true to try anyway"
    if not sized.rows:  # the first row's shapes do not follow: the input images alone are too large
        return f"model.input_shape={list(sized.input_shape)}: training needs {total}; use smaller images, {advice}"
    index = max(range(len(sized.rows)), key=need.per_row.__getitem__)
    row = sized.rows[index]
    application = row.application
    return (f"{application.path} ({application.name}: {application.block.type}) makes the model too large "
            f"to train here: {total}; the row takes {_gib(need.per_row[index])} ({_count(row.params)} weights, "
            f"each with its gradient and {_slots(need.slots)}, and {_count(row.kept * need.batch_size)} "
            f"activations for a batch of {need.batch_size}); shrink model.input_shape, the row or "
            f"trainer.batch_size, {advice}")


def _slots(count: int) -> str:
    return "no optimizer slot" if count == 0 else f"{count} optimizer slot{'s' if count > 1 else ''}"


def _size_of(dtype: str) -> int:
    return tf.as_dtype(dtype).size


def _gib(count: int) -> str:
    return f"{count / GIB:.1f} GiB"


def _count(count: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= scale:
            return f"{count / scale:.2f} {unit}"
    return str(count)
