"""Mixup and CutMix: a training batch mixed with a permutation of itself, with targets mixed in the
same proportion. They run in the compiled step, after normalisation, on the device.

Mixup (Zhang et al. 2018, Section 2): x = lam * x_i + (1 - lam) * x_j, lam ~ Beta(alpha, alpha).
CutMix (Yun et al. 2019, Section 3.1, Algorithm A1): a box of area (1 - lam) of the image, centred
uniformly (clipped at the edges), is pasted from x_j, and lam is recomputed from the box's
clipped area. One lam per batch, as both papers' code and timm's default `mode='batch'` draw it.
With both on, each mixed batch is CutMix with probability `switch` (timm's `switch_prob`).

Written here rather than with keras.layers.MixUp and CutMix: those draw from an int seed or a
SeedGenerator (a stateful variable), whereas a run repeats given trainer.seed and resumes exactly,
so every draw here is stateless, from trainer.seed and the optimizer's update count (which a
resume point restores); and Keras's CutMix draws its Beta parameter uniformly from a `factor`
range, not the paper's fixed alpha.
"""

import dataclasses

import tensorflow as tf

from runner.mistakes.errors import UserError

MIXING_STREAM = 0x6D6978  # told apart from the other seeds derived from trainer.seed


@dataclasses.dataclass(frozen=True)
class Mixing:
    mixup: float  # alpha of Beta(alpha, alpha); 0: off
    cutmix: float  # alpha; 0: off
    probability: float  # that a batch is mixed at all
    switch: float  # with both on: the probability that a mixed batch uses CutMix
    seed: int  # trainer.seed

    def __call__(self, images, targets, step):
        """images [B, H, W, C] float, targets [B, K] -> both mixed; `step` the update count."""
        seed = tf.random.experimental.stateless_fold_in(
            tf.constant([self.seed, MIXING_STREAM], tf.int64), tf.cast(step, tf.int64))
        applies, switches, ratio, order, place = tf.unstack(tf.random.experimental.stateless_split(seed, 5))
        use_cutmix = self._uses_cutmix(switches)
        lam = beta(ratio, tf.where(use_cutmix, float(self.cutmix), float(self.mixup)))
        lam = tf.where(tf.random.stateless_uniform([], applies) < self.probability, lam, 1.0)
        height, width = images.shape[1], images.shape[2]
        kept = tf.cond(use_cutmix, lambda: 1.0 - box(height, width, lam, place),
                       lambda: tf.fill([height, width, 1], lam))  # the share of x_i in each pixel
        partner = tf.argsort(tf.random.stateless_uniform([tf.shape(images)[0]], order))
        kept_share = tf.reduce_mean(kept)  # CutMix: lam adjusted to the clipped box (the paper's code)
        images = kept * images + (1.0 - kept) * tf.gather(images, partner)
        targets = kept_share * targets + (1.0 - kept_share) * tf.gather(targets, partner)
        return images, targets

    def _uses_cutmix(self, seed):
        if not self.mixup:
            return tf.constant(True)
        if not self.cutmix:
            return tf.constant(False)
        return tf.random.stateless_uniform([], seed) < self.switch


def beta(seed, alpha):
    """One draw of Beta(alpha, alpha), as the ratio of two Gamma(alpha) draws."""
    gammas = tf.random.stateless_gamma([2], seed, alpha)
    return gammas[0] / tf.maximum(gammas[0] + gammas[1], 1e-12)


def box(height: int, width: int, lam, seed):
    """[height, width, 1]: 1 inside CutMix's box of sides sqrt(1 - lam) of the image's, its centre
    uniform over the image, clipped at the edges (Yun et al. 2019, Algorithm A1); 0 outside."""
    side = tf.sqrt(1.0 - lam)
    centre = tf.random.stateless_uniform([2], seed) * tf.constant([height, width], tf.float32)
    half = tf.floor(side * tf.constant([height, width], tf.float32) / 2.0)
    top_left = tf.clip_by_value(centre - half, 0.0, tf.constant([height, width], tf.float32))
    bottom_right = tf.clip_by_value(centre + half, 0.0, tf.constant([height, width], tf.float32))
    rows = tf.range(height, dtype=tf.float32)[:, None]
    columns = tf.range(width, dtype=tf.float32)[None, :]
    inside = ((rows >= tf.floor(top_left[0])) & (rows < tf.floor(bottom_right[0]))
              & (columns >= tf.floor(top_left[1])) & (columns < tf.floor(bottom_right[1])))
    return tf.cast(inside, tf.float32)[:, :, None]


def from_config(cfg) -> Mixing | None:
    """cfg.augment's mixup and cutmix, or None when both are off."""
    augment = cfg.augment
    for key in ("mix_prob", "mix_switch_prob"):
        if not 0.0 <= augment[key] <= 1.0:
            raise UserError(f"augment.{key}={augment[key]} is a probability: give a number from 0 to 1")
    if not (augment.mixup or augment.cutmix):
        return None
    return Mixing(augment.mixup, augment.cutmix, augment.mix_prob, augment.mix_switch_prob, cfg.trainer.seed)
