"""trainer.grad_accumulation: a batch of trainer.batch_size images per update, in k forward and
backward passes of batch_size / k images each, their gradients averaged into one update.

Written here rather than taken from Keras's Optimizer(gradient_accumulation_steps=k), which under
tf.distribute cannot serve: it applies the update in a cond inside the replica context whose branch
calls merge_call, which tf.distribute does not support (Keras's LossScaleOptimizer says so where it
avoids the same); its learning-rate schedules count passes, not updates; its average (use_ema) moves
at every pass; and its sums live in mirrored variables that hold a different value on each replica,
of which a checkpoint keeps one. Here the k passes run inside one training step, on consecutive
parts of each replica's share of the batch, one pass at a time (a while loop of one iteration in
flight, so only one pass's activations are alive), and the optimizer sees one update per step: the
steps of an epoch, the schedules, trainer.steps_per_execution and the average count updates, and an
epoch always ends between updates, so a resume point never holds half an accumulation.

Each pass's loss averages over the global batch of one pass (batch_size / k, as
runner/training/steps.py sets it): the mean of the k gradients is then the gradient of the whole
batch's mean loss, as one pass of batch_size would give, and steps.py adds the L2 term's gradient
once. Batch norm sees batch_size / k images a pass (per replica, / replicas again).
"""

from typing import Callable, Sequence

import tensorflow as tf

from runner.mistakes.errors import UserError


def check_passes(batch_size: int, passes: int, replicas: int) -> None:
    """A UserError unless the batch splits into `passes` equal passes that split over the replicas."""
    if batch_size % passes:
        raise UserError(f"trainer.grad_accumulation={passes} does not divide trainer.batch_size={batch_size}: "
                        "each pass takes batch_size / grad_accumulation images")
    if (batch_size // passes) % replicas:
        raise UserError(f"trainer.grad_accumulation={passes}: a pass of {batch_size // passes} images (trainer."
                        f"batch_size={batch_size} / {passes}) does not split over {replicas} replicas; make "
                        f"batch_size a multiple of {passes * replicas}")


def accumulated(gradients_and_sums: Callable, batch: Sequence[tf.Tensor], passes: int, variables,
                keys: Sequence[str]):
    """`gradients_and_sums(*part)` -> (gradients of `variables`, {key: sum}) on each of `passes` equal
    consecutive parts of `batch` (tensors whose first axis is the examples), in order: the mean of
    their gradients (None for a variable the loss does not reach, as without accumulation) and the
    totals of their sums."""
    if passes == 1:
        return gradients_and_sums(*batch)
    parts = [tf.reshape(tensor, [passes, -1, *tensor.shape[1:]]) for tensor in batch]
    unreached = set()  # filled as the loop's body is traced

    def one_pass(index, gradients, totals):
        part_gradients, part_totals = gradients_and_sums(*(part[index] for part in parts))
        unreached.update(position for position, gradient in enumerate(part_gradients) if gradient is None)
        gradients = [total if gradient is None else total + tf.convert_to_tensor(gradient)
                     for total, gradient in zip(gradients, part_gradients)]
        return index + 1, gradients, {key: totals[key] + part_totals[key] for key in keys}

    start = (tf.constant(0), [tf.zeros(variable.shape, variable.dtype) for variable in variables],
             {key: tf.constant(0.0) for key in keys})
    _, gradients, totals = tf.while_loop(lambda index, *_: index < passes, one_pass, start, parallel_iterations=1)
    gradients = [None if position in unreached else gradient / passes for position, gradient in enumerate(gradients)]
    return gradients, totals
