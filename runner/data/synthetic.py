"""Generated images of any size and class count: learnable, deterministic given trainer.seed."""

import math

import numpy as np

import tensorflow as tf

from runner.data import pixels, source

NOISE_STD = 0.1  # small next to the gap between class colours, so a few steps reduce the loss


def from_config(cfg, training: bool = True) -> source.Source:
    # In memory and cheap to make: `training` false changes nothing here (splits.load sets train aside).
    shape = tuple(cfg.model.input_shape)
    num_classes, seed = cfg.data.num_classes, cfg.trainer.seed
    return source.Source(
        train=_examples(cfg.data.train_size, 0, shape, num_classes, seed),
        val=_examples(cfg.data.val_size, 1, shape, num_classes, seed),
        class_names=[f"class_{label}" for label in range(num_classes)],
    )


def _examples(count: int, split: int, shape, num_classes: int, seed: int) -> source.Examples:
    # Labels cycle through the classes, so every split is balanced.
    label = source.as_written(lambda index: (index, tf.cast(index % num_classes, tf.int32)))
    keys = tf.data.Dataset.range(count).map(label)
    return source.Examples(
        keys, count, lambda index, view: pixels.decoded(image(index, split, shape, num_classes, seed), view),
        (np.arange(count) % num_classes).astype(np.int32))


def image(index, split: int, shape, num_classes: int, seed: int) -> tf.Tensor:
    """Float32 [height, width, channels] in [0, 1]: the class's colour and stripe orientation (fixed
    by seed and class), with a phase and noise of the image's own (fixed by seed, split and index)."""
    height, width, channels = shape
    label = index % num_classes
    class_seed = tf.random.experimental.stateless_fold_in(tf.constant([seed, 0], tf.int64), label)
    colour_seed, angle_seed = tf.unstack(tf.random.experimental.stateless_split(class_seed, 2))
    colour = tf.random.stateless_uniform([channels], colour_seed, 0.2, 0.8)
    angle = tf.random.stateless_uniform([], angle_seed, 0.0, math.pi)
    image_seed = tf.random.experimental.stateless_fold_in(tf.constant([seed, split + 1], tf.int64), index)
    phase_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(image_seed, 2))
    phase = tf.random.stateless_uniform([], phase_seed, 0.0, 2 * math.pi)
    y, x = tf.meshgrid(tf.linspace(0.0, 1.0, height), tf.linspace(0.0, 1.0, width), indexing="ij")
    stripes = tf.sin(8 * math.pi * (x * tf.cos(angle) + y * tf.sin(angle)) + phase)  # 4 periods
    noise = tf.random.stateless_normal([height, width, channels], noise_seed, stddev=NOISE_STD)
    return tf.clip_by_value(colour + 0.15 * stripes[..., tf.newaxis] + noise, 0.0, 1.0)
