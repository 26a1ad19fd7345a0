"""tf.data pipelines from a source's examples: shuffle keys, read through a view, batch; and the
normalisation the training and evaluation steps apply on the device."""

import dataclasses

import numpy as np
import tensorflow as tf

from runner.data import balance, pixels
from runner.data.source import Examples, as_written
from runner.mistakes.errors import UserError

AUTOTUNE = tf.data.AUTOTUNE


def cached(examples: Examples, view, *, deterministic: bool = True, filename: str = "") -> Examples:
    """The examples' pixels through `view` (e.g. augment.resized), decoded once and kept in memory
    (or in `filename`'s files); in their order unless not `deterministic`."""
    images = examples.keys.map(as_written(lambda key, label: (examples.pixels(key, view), label)),
                               num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    return Examples(images.cache(filename), examples.count, pixels.decoded, examples.labels)


def training(examples: Examples, view, *, batch_size: int, seed: int, shuffle_buffer: int, cache_view=None,
             cache_file: str = "", balanced: bool = False):
    """One epoch per iteration, reshuffled each time; `view(seed)` prepares each image.

    Only keys are shuffled (file names, not pixels), so the whole split fits in the buffer. With
    `cache_view` the cache freezes the first epoch's order, so its output is reshuffled within
    `shuffle_buffer` images (`cache_file`: see `cached`). `balanced`: as many keys, drawn so every
    class comes up equally often (runner/data/balance.py). The last partial batch is dropped: XLA
    needs static shapes.
    """
    if balanced and cache_view is not None:
        raise UserError("data.sampling=balanced draws every epoch anew, which data.cache would freeze "
                        "after the first: pass data.cache=false")
    if balanced:
        keys = balance.balanced_keys(examples.keys, examples.labels, seed)
    else:
        keys = examples.keys.shuffle(examples.count, seed, reshuffle_each_iteration=cache_view is None)
    if cache_view is not None:
        examples = cached(Examples(keys, examples.count, examples.pixels, examples.labels), cache_view,
                          deterministic=False, filename=cache_file)
        keys = examples.keys.shuffle(shuffle_buffer, seed, reshuffle_each_iteration=True)
    # One stateless seed per example, new every epoch: crops differ between epochs, yet a run
    # repeats given trainer.seed (stateful random ops in a map would repeat each epoch's draws).
    seeds = tf.data.Dataset.random(seed, rerandomize_each_iteration=True).batch(2)
    images = tf.data.Dataset.zip(keys, seeds).map(
        as_written(lambda example, image_seed: (examples.pixels(example[0], view(image_seed)), example[1])),
        num_parallel_calls=AUTOTUNE, deterministic=False)
    return images.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)


def evaluation(examples: Examples, view, *, batch_size: int):
    """Every example once, in order, the last batch possibly smaller."""
    images = examples.keys.map(as_written(lambda key, label: (examples.pixels(key, view), label)),
                               num_parallel_calls=AUTOTUNE)
    return images.batch(batch_size).prefetch(AUTOTUNE)


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """What a model takes: (images / 255 - mean) / std per channel, in the [0, 1] units the papers'
    statistics use, listed in RGB order; `bgr`: the channels are then reversed (Caffe's order, which
    the weights converted from Caffe expect)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    bgr: bool = False

    def as_params(self) -> dict[str, object]:
        return {"preprocessing.mean": list(self.mean), "preprocessing.std": list(self.std),
                "preprocessing.channels": "BGR" if self.bgr else "RGB"}


# The ImageNet training set's statistics, as torchvision and timm normalise with them.
IMAGENET = Preprocessing((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def normaliser(preprocessing: Preprocessing, channels: int):
    """uint8 images -> float32 as `preprocessing` says. Runs inside the compiled step, on the device."""
    mean, std = per_channel(preprocessing, channels)
    offset, scale = 255.0 * mean, 1.0 / (255.0 * std)
    if preprocessing.bgr and channels == 3:
        return lambda images: tf.reverse((tf.cast(images, tf.float32) - offset) * scale, axis=[-1])
    return lambda images: (tf.cast(images, tf.float32) - offset) * scale


def per_channel(preprocessing: Preprocessing, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean and std, one value per channel of a `channels`-channel model."""
    return (_per_channel("data.mean", preprocessing.mean, channels),
            _per_channel("data.std", preprocessing.std, channels))


def _per_channel(name: str, values, channels: int) -> np.ndarray:
    values = np.asarray(list(values), np.float32)
    if len(values) in (1, channels):
        return np.broadcast_to(values, [channels]).copy()
    if channels == 1 and len(values) == 3:
        # RGB statistics for a grayscale model: the luma of the means; of the stds as well, which
        # assumes correlated channels (close for natural images) and errs towards a larger std.
        return np.array([np.dot(pixels.LUMA, values)], np.float32)
    raise UserError(f"{name} has {len(values)} values but the model takes {channels} channels; "
                    f"give 1 or {channels}")
