"""The principal components of a training set's pixel colours, which AlexNet's PCA lighting follows
(runner/data/colour.py `lighting`; Krizhevsky et al. 2012, Section 4.1).

The paper used every ImageNet training pixel. A 3x3 covariance settles long before that: SAMPLE_IMAGES
images spread evenly over the example list (which folders order by class, so every class is in), each
read every k-th row and column down to about GRID x GRID of its own pixels (no resampling, which would
smooth the colours), give about a million pixels for seconds of decoding. For image files the result
is kept in the user's cache (components/<fingerprint>.json, readable), keyed by the sampled files'
paths, sizes and modification times and by how they were read; images in memory (digits, synthetic)
are few and small, so they are read each time.
"""

import hashlib
import json
import os

import numpy as np
import tensorflow as tf

from runner.data.cache_home import cache_home
from runner.data.colour import Components
from runner.data.source import Examples, as_written
from runner.disk import written_whole

SAMPLE_IMAGES = 1000
GRID = 32


def principal_components(examples: Examples, channels: int) -> Components:
    """The components of `examples`' pixels (uint8, `channels` of them), from the cache where it has them."""
    sample = examples.keys.shard(max(1, examples.count // SAMPLE_IMAGES), 0).take(SAMPLE_IMAGES)
    if sample.element_spec[0].dtype != tf.string:  # not file paths: images in memory
        return _components(*_moments(examples, sample, channels))
    paths = [path.decode() for path, _ in sample.as_numpy_iterator()]
    kept = cache_home() / "components" / f"{_fingerprint(paths, channels)}.json"
    if kept.is_file():
        found = json.loads(kept.read_text())
        return Components(tuple(found["stdevs"]), tuple(map(tuple, found["vectors"])))
    components = _components(*_moments(examples, sample, channels))
    kept.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(kept, shared=True) as partial:  # parallel jobs never read half a file
        partial.write_text(json.dumps({"stdevs": components.stdevs, "vectors": components.vectors,
                                       "images": len(paths)}))
    return components


def _moments(examples: Examples, sample: tf.data.Dataset, channels: int):
    """(pixel count, sum [C], sum of outer products [C, C]) over the sample's pixels, in float64."""

    def every_kth(shape, read):
        step = tf.maximum(shape // GRID, 1)
        return read(0, 0, shape[0], shape[1])[:: step[0], :: step[1]]

    def moments(key, _):
        pixels = tf.reshape(tf.cast(examples.pixels(key, every_kth), tf.float64), [-1, channels])
        return (tf.cast(tf.shape(pixels)[0], tf.float64), tf.reduce_sum(pixels, 0),
                tf.matmul(pixels, pixels, transpose_a=True))

    zero = (tf.constant(0.0, tf.float64), tf.zeros([channels], tf.float64), tf.zeros([channels] * 2, tf.float64))
    totals = sample.map(as_written(moments), num_parallel_calls=tf.data.AUTOTUNE).reduce(
        zero, lambda sums, one: tuple(total + value for total, value in zip(sums, one)))
    return tuple(total.numpy() for total in totals)


def _components(count: float, total: np.ndarray, outer: np.ndarray) -> Components:
    mean = total / count
    covariance = outer / count - np.outer(mean, mean)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)  # ascending, one vector per column
    order = np.argsort(eigenvalues)[::-1]
    stdevs = np.sqrt(np.maximum(eigenvalues[order], 0.0))  # rounding can leave a null one a hair below 0
    return Components(tuple(stdevs.tolist()), tuple(map(tuple, eigenvectors[:, order].T.tolist())))


def _fingerprint(paths: list[str], channels: int) -> str:
    digest = hashlib.sha256(f"channels={channels} images={SAMPLE_IMAGES} grid={GRID}\n".encode())
    for path in paths:  # in the sample's order: another order is another sample
        stat = os.stat(path)
        digest.update(f"{os.path.abspath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
