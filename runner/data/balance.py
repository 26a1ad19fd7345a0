"""Imbalanced training sets: a weight per class for the loss (data.class_weights), or keys drawn so
every class comes up equally often (data.sampling=balanced)."""

import numpy as np
import tensorflow as tf
from omegaconf import ListConfig

from runner.config.bounds import Choices
from runner.data.source import as_written
from runner.mistakes.errors import UserError

BALANCE_STREAM = 0x62616C  # told apart from the augmentation's seeds, drawn from the same trainer.seed

# data.sampling -> whether keys are drawn balanced. shuffle: every training image once an epoch, in a
# new order; balanced: as many images, drawn with replacement, every class equally often.
BALANCED = Choices("data.sampling", "sampling", {"shuffle": False, "balanced": True})


def class_counts(labels: np.ndarray, num_classes: int) -> list[int]:
    return np.bincount(labels, minlength=num_classes).tolist()


def class_weights(setting, counts: list[int]) -> tuple[float, ...] | None:
    """data.class_weights: None (every class 1), `balanced`, or one weight per class.

    `balanced` is scikit-learn's rule, n / (classes * n_c): the weighted classes then count as
    much as each other, and the weights average 1 over the training images, so the loss keeps
    its scale. A class without training images gets 0 (it never appears in the loss).
    """
    if setting is None:
        return None
    if setting == "balanced":
        counts = np.asarray(counts, np.float64)
        present = counts > 0
        weights = np.zeros_like(counts)
        weights[present] = counts.sum() / (present.sum() * counts[present])
        return tuple(float(weight) for weight in weights)
    if isinstance(setting, (list, tuple, ListConfig)) and len(setting) == len(counts):
        weights = tuple(float(weight) for weight in setting)
        if all(weight >= 0 for weight in weights) and any(weights):
            return weights
    raise UserError(f"data.class_weights={setting}: expected balanced, or {len(counts)} weights "
                    "(one per class, in label order, none negative)")


def training_shares(sampling: str, weights: tuple[float, ...] | None, counts: list[int]) -> dict[str, list]:
    """The per-class table's training columns: images, the share of the loss each class carries
    (its images as sampled, times its weight), so the effect of either option shows beside recall."""
    counts_array = np.asarray(counts, np.float64)
    drawn = (counts_array > 0).astype(np.float64) if sampling == "balanced" else counts_array
    carried = drawn * (np.asarray(weights) if weights is not None else 1.0)
    shares = carried / max(carried.sum(), 1e-12)
    return {"train_images": [int(count) for count in counts], "train_loss_share": shares.round(4).tolist()}


def balanced_keys(keys: tf.data.Dataset, labels: np.ndarray, seed: int) -> tf.data.Dataset:
    """len(labels) keys per iteration (an epoch), each drawn with replacement: a class uniformly
    among those with images, then one of its images uniformly, as PyTorch's WeightedRandomSampler
    with weights 1 / n_c does. Each draw has a stateless seed, new every epoch and repeated given
    `seed`, so a resumed run draws what the uninterrupted one would.

    Written here because tf.data's sample_from_datasets draws the same choices every epoch, and
    filtering the keys into one dataset per class scans every key once per class.
    """
    present = np.flatnonzero(np.bincount(labels))
    by_class = np.argsort(labels, kind="stable").astype(np.int64)  # example indices, class by class
    starts = np.searchsorted(labels[by_class], present).astype(np.int64)
    sizes = np.bincount(labels)[present].astype(np.int64)
    every_key = keys.batch(len(labels)).get_single_element()  # keys are names or small images

    def draw(seed_pair):
        class_seed, image_seed = tf.unstack(tf.random.experimental.stateless_split(seed_pair, 2))
        chosen = tf.random.stateless_uniform([], class_seed, 0, len(present), tf.int64)
        size = tf.gather(sizes, chosen)
        offset = tf.random.stateless_uniform([], image_seed, 0, tf.int64.max, tf.int64) % size
        index = tf.gather(by_class, tf.gather(starts, chosen) + offset)
        return tf.nest.map_structure(lambda column: tf.gather(column, index), every_key)

    seeds = tf.data.Dataset.random(seed + BALANCE_STREAM, rerandomize_each_iteration=True).batch(2)
    return seeds.take(len(labels)).map(as_written(draw), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
