"""Random erasing (Zhong et al. 2020, "Random Erasing Data Augmentation", Algorithm 1): with probability
p, a rectangle of the image is filled with random values.

Written here rather than with keras.layers.RandomErasing, which refuses a seed tensor (it draws with its
own seed generator), draws its rectangle's two sides independently instead of an area and an aspect
ratio, and fills with one value: Algorithm 1 draws the area S_e ~ U(s_l, s_h) * S and the aspect
r_e ~ U(r_1, 1/r_1), sides H_e = sqrt(S_e r_e) and W_e = sqrt(S_e / r_e) (rounded to whole pixels
here), the corner anywhere in the image, and tries again while the rectangle runs past an edge; it
fills every erased pixel and channel with its own value from U(0, 255) (timm's "pixel" mode).
"""

import tensorflow as tf

from runner.mistakes.errors import UserError

AREA = (0.02, 1 / 3)  # s_l, s_h, of the image's area (torchvision's and timm's default; the paper's CIFAR runs: 0.4)
ASPECT = (0.3, 1 / 0.3)  # r_1, r_2 = 1 / r_1: height / width
# Algorithm 1 loops until a rectangle fits; a graph needs a bound. About a third of the draws fit, so
# all of 100 missing (the image then left as it is) has a chance near 1e-16.
ATTEMPTS = 100


def random_erasing(probability: float):
    """(image uint8 [height, width, channels], seed [2]) -> the image, a rectangle erased with
    `probability`."""

    def erase(image, seed):
        apply_seed, shape_seed, corner_seed, fill_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 4))

        def erased():  # only when applied: the fill's draw costs more than the rest together
            top, left, height, width = rectangle(tf.shape(image)[:2], shape_seed, corner_seed)
            rows, columns = tf.range(tf.shape(image)[0]), tf.range(tf.shape(image)[1])
            inside = ((rows >= top) & (rows < top + height))[:, None] & ((columns >= left) & (columns < left + width))
            noise = tf.random.stateless_uniform(tf.shape(image), fill_seed, 0, 256, tf.int32)
            return tf.where(inside[..., None], tf.cast(noise, tf.uint8), image)

        applied = tf.random.stateless_uniform([], apply_seed) < probability
        return tf.ensure_shape(tf.cond(applied, erased, lambda: image), image.shape)

    return erase


def rectangle(shape, shape_seed, corner_seed):
    """(top, left, height, width) of the first of ATTEMPTS draws that fits in `shape`; all zero (nothing
    erased) when none does."""
    size = tf.cast(shape, tf.float32)
    area = tf.random.stateless_uniform([ATTEMPTS], shape_seed, *AREA) * size[0] * size[1]
    aspect = tf.random.stateless_uniform([ATTEMPTS], tf.random.experimental.stateless_fold_in(shape_seed, 1),
                                         *ASPECT)
    height = tf.maximum(tf.cast(tf.round(tf.sqrt(area * aspect)), tf.int32), 1)
    width = tf.maximum(tf.cast(tf.round(tf.sqrt(area / aspect)), tf.int32), 1)
    corner = tf.cast(tf.random.stateless_uniform([ATTEMPTS, 2], corner_seed) * size, tf.int32)
    fits = (corner[:, 0] + height <= shape[0]) & (corner[:, 1] + width <= shape[1])
    first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
    found = tf.cast(tf.reduce_any(fits), tf.int32)
    return corner[first, 0] * found, corner[first, 1] * found, height[first] * found, width[first] * found


def check(probability: float) -> None:
    if not 0 <= probability <= 1:
        raise UserError(f"augment.random_erasing={probability}: expected a probability, 0 to 1")
