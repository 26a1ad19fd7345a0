"""What a dataset source hands to the pipeline: per split, cheap keys and a way to read pixels."""

import dataclasses
from typing import Callable

import numpy as np
import tensorflow as tf

from runner.data import pixels

# A map's function traced as written, without AutoGraph, which tf.data applies by default: the data code
# writes its branches as tf.cond, and converting it (AutoGraph parses the source of every function a map
# calls) took about 0.7 s of each fresh process's first run.
as_written = tf.autograph.experimental.do_not_convert


@dataclasses.dataclass
class Examples:
    """One split, before any pixel is read."""

    keys: tf.data.Dataset  # (key, label int32): a file path, an index or a small image
    count: int
    pixels: Callable  # pixels(key, view): the view (see pixels.py) applied to the example's pixels
    labels: np.ndarray  # int32 [count], in the keys' order: class counts (data.class_weights, data.sampling)


@dataclasses.dataclass
class Source:
    train: Examples | None  # None: not asked for (runner.data.splits.load without train)
    val: Examples
    class_names: list[str]
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)  # {file: why it cannot be decoded}
    # The classes as the files name them (folder names: WordNet ids in ImageNet's layout); None: the names.
    class_folders: list[str] | None = None


def files(paths: list[str], labels: np.ndarray, channels: int) -> Examples:
    """Image files of any format TensorFlow decodes, decoded with `channels` channels."""
    labels = labels.astype(np.int32)
    keys = tf.data.Dataset.from_tensor_slices((paths, labels))
    return Examples(keys, len(paths), lambda path, view: pixels.encoded(tf.io.read_file(path), channels, view),
                    labels)


def tensors(images: np.ndarray, labels: np.ndarray) -> Examples:
    """Images already in memory: [n, height, width, channels], uint8 or float in [0, 1]."""
    labels = labels.astype(np.int32)
    return Examples(tf.data.Dataset.from_tensor_slices((images, labels)), len(labels), pixels.decoded, labels)


@dataclasses.dataclass(frozen=True)
class Shard:
    """One worker's part of a multi-worker run: every `count`-th example from `index`, in batches of
    `batch_size` (per replica), `replicas` of them per step on this worker."""

    count: int
    index: int
    batch_size: int
    replicas: int = 1


def sharded(examples: Examples, shard: Shard) -> Examples:
    """This worker's examples: keys (file names), not pixels, are split, so each file is read once."""
    return Examples(examples.keys.shard(shard.count, shard.index),
                    len(range(shard.index, examples.count, shard.count)), examples.pixels,
                    examples.labels[shard.index::shard.count])

