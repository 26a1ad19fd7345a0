"""Colour augmentations of a training image, after its crop and flip: AlexNet's PCA lighting and
GoogLeNet's photometric distortions.

Each step maps float32 pixels in [0, 1] and a stateless seed [2] to pixels in [0, 1] (clipped, so
each step sees displayable colours); `recolouring` chains the configured steps between uint8 and
float once, so two steps round to uint8 once.
"""

import dataclasses

import tensorflow as tf

from runner.data.pixels import to_uint8
from runner.mistakes.errors import UserError


@dataclasses.dataclass(frozen=True)
class Components:
    """The principal components of the training pixels' colours (RGB, or the one grey channel), in
    [0, 255] units, largest first: `stdevs` [C], the standard deviation along each (the square root of
    the pixel covariance's eigenvalue); `vectors` [C][C], row i holding the unit component i."""

    stdevs: tuple[float, ...]
    vectors: tuple[tuple[float, ...], ...]


def lighting(components: Components, strength: float):
    """AlexNet's PCA lighting (Krizhevsky et al. 2012, Section 4.1): add sum_i alpha_i s_i p_i to every
    pixel, p_i the components, alpha_i ~ N(0, strength) drawn once per image (0.1 in the paper).

    The paper writes the eigenvalue lambda_i for s_i; Krizhevsky's own data provider (cuda-convnet2,
    `color_stdevs`) multiplies by the standard deviation along p_i, sqrt(lambda_i), which does not
    depend on the pixels' units (lambda_i in [0, 255] units would shift pixels by hundreds): we follow
    the code. A grey model's one component is the pixel std: a brightness shift of alpha * std."""
    stdevs = tf.constant(components.stdevs, tf.float32)
    vectors = tf.constant(components.vectors, tf.float32)  # [C, C], a component per row

    def step(image, seed):
        alpha = tf.random.stateless_normal(stdevs.shape, seed, stddev=strength)
        shift = tf.linalg.matvec(vectors, alpha * stdevs, transpose_a=True) / 255.0  # [C], in [0, 1] units
        return tf.clip_by_value(image + shift, 0.0, 1.0)

    return step


# TF-Slim's inception_preprocessing.distort_color, the photometric distortions of GoogLeNet's training
# (Szegedy et al. 2014, Section 6, after Howard 2013), at photometric=1: each range scales with it.
BRIGHTNESS = 32 / 255  # the largest brightness shift, in [0, 1] units
SATURATION = 0.5  # saturation factor in [1 - this, 1 + this]
HUE = 0.2  # the largest hue rotation, in turns
CONTRAST = 0.5  # contrast factor in [1 - this, 1 + this]
MOST_PHOTOMETRIC = 2.0  # past it the lowest saturation and contrast factors fall below 0


def _distortions(strength: float) -> dict:
    def spread(width):
        return 1.0 - width * strength, 1.0 + width * strength

    return {
        "brightness": lambda image, seed: tf.image.stateless_random_brightness(image, BRIGHTNESS * strength, seed),
        "saturation": lambda image, seed: tf.image.stateless_random_saturation(image, *spread(SATURATION), seed),
        "hue": lambda image, seed: tf.image.stateless_random_hue(image, HUE * strength, seed),
        "contrast": lambda image, seed: tf.image.stateless_random_contrast(image, *spread(CONTRAST), seed),
    }


# distort_color's four orders (its color_ordering 0 to 3), one drawn per image.
ORDERS = (("brightness", "saturation", "hue", "contrast"), ("saturation", "brightness", "contrast", "hue"),
          ("contrast", "hue", "brightness", "saturation"), ("hue", "saturation", "contrast", "brightness"))
GREY = ("brightness", "contrast")  # saturation and hue have no meaning for one channel


def photometric(strength: float, channels: int):
    """GoogLeNet's photometric distortions: random brightness, saturation, hue and contrast in one of
    distort_color's four orders, their ranges (BRIGHTNESS, SATURATION, HUE, CONTRAST) times `strength`.
    A grey model: brightness and contrast only, in the order each of the four puts them."""
    if not 0 <= strength <= MOST_PHOTOMETRIC:
        raise UserError(f"augment.photometric={strength} must be between 0 and {MOST_PHOTOMETRIC} (1: "
                        "TF-Slim's ranges; beyond 2 the saturation and contrast factors would fall below 0)")
    distortions = _distortions(strength)
    kept = GREY if channels == 1 else tuple(distortions)
    orders = [[name for name in order if name in kept] for order in ORDERS]

    def step(image, seed):
        order_seed, *seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 1 + len(kept)))
        by_name = dict(zip(kept, seeds))

        def distorted(order):
            def run():
                result = image
                for name in order:
                    result = distortions[name](result, by_name[name])
                return tf.clip_by_value(result, 0.0, 1.0)

            return run

        drawn = tf.random.stateless_uniform([], order_seed, 0, len(orders), dtype=tf.int32)
        return tf.switch_case(drawn, [distorted(order) for order in orders])

    return step


def recolouring(augment, components: Components | None, channels: int):
    """(uint8 image, seed [2]) -> uint8 image under augment.pca_lighting (which needs the training set's
    `components`) and augment.photometric, in that order; None when both are off."""
    steps = []
    if augment.pca_lighting:
        steps.append(lighting(components, augment.pca_lighting))
    if augment.photometric:
        steps.append(photometric(augment.photometric, channels))
    if not steps:
        return None

    def recolour(image, seed):
        pixels = tf.cast(image, tf.float32) / 255.0
        for step, step_seed in zip(steps, tf.unstack(tf.random.experimental.stateless_split(seed, len(steps)))):
            pixels = step(pixels, step_seed)
        return to_uint8(pixels * 255.0)

    return recolour
