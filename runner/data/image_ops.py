"""The image operations of the augmentation policies (runner/data/policies.py), one function each:
`op(image, magnitude)` on uint8 [height, width, channels] (1 or 3 channels), returning uint8.

Each follows the definition the policy papers took from PIL (Cubuk et al. 2019, AutoAugment, Table 6;
Cubuk et al. 2020, RandAugment, Section 3) as torchvision's transforms/autoaugment.py `_apply_op`
applies them: geometry with nearest sampling and black fill; the enhancements (Brightness, Color,
Contrast, Sharpness) blend the image with a degenerate one by the factor 1 + magnitude and round back,
where torchvision truncates. They are written here from TensorFlow ops rather than with Keras's
AutoContrast, Equalization, Solarization, RandomShear, ... layers: those draw their own magnitudes
from ranges with their own seed generators (a seed tensor is refused: keras.random's draw_seed takes
an int or a SeedGenerator), and Equalization maps the CDF from its minimum, not PIL's histogram step.

On a one-channel image the grey level is the image itself, so Color is the identity there.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from runner.data.pixels import LUMA


def identity(image, magnitude):
    del magnitude
    return image


def shear_x(image, magnitude):
    """Pixel (x, y) of the result is the image's (x + magnitude * y, y): PIL's affine (1, m, 0, 0, 1, 0),
    about the top-left corner, as AutoAugment's code and torchvision."""
    return _affine(image, [1.0, magnitude, 0.0, 0.0, 1.0, 0.0])


def shear_y(image, magnitude):
    return _affine(image, [1.0, 0.0, 0.0, magnitude, 1.0, 0.0])


def translate_x(image, magnitude):
    """Moved right by int(magnitude) pixels (truncated, as torchvision)."""
    return _affine(image, [1.0, 0.0, -_whole(magnitude), 0.0, 1.0, 0.0])


def translate_y(image, magnitude):
    """Moved down by int(magnitude) pixels."""
    return _affine(image, [1.0, 0.0, 0.0, 0.0, 1.0, -_whole(magnitude)])


def rotate(image, magnitude):
    """Rotated `magnitude` degrees counter-clockwise about the image's centre (torchvision's F.rotate)."""
    angle = magnitude * (math.pi / 180.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    height, width = _height_width(image)
    cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0  # pixel centres sit on whole coordinates
    # Output pixel (x, y) reads the input at the centre plus its offset turned back by the angle (y down).
    return _affine(image, [cos, -sin, cx - cx * cos + cy * sin, sin, cos, cy - cx * sin - cy * cos])


def brightness(image, magnitude):
    """Blended with black by 1 + magnitude."""
    return _blend(tf.zeros_like(_float(image)), image, magnitude)


def color(image, magnitude):
    """Blended with its grey level by 1 + magnitude (saturation); the identity on one channel."""
    return _blend(_grey(image), image, magnitude)


def contrast(image, magnitude):
    """Blended with the mean grey level by 1 + magnitude."""
    return _blend(tf.reduce_mean(_grey(image)), image, magnitude)


def sharpness(image, magnitude):
    """Blended with PIL's SMOOTH filter (3x3: centre 5, the rest 1, over 13) by 1 + magnitude; the
    filtered image keeps the border pixels as they were, as PIL and torchvision."""
    pixels = _float(image)
    kernel = np.ones([3, 3], np.float32)
    kernel[1, 1] = 5.0
    kernel = tf.constant(kernel / kernel.sum())[:, :, None, None]
    channels = tf.shape(pixels)[-1]
    smooth = tf.nn.depthwise_conv2d(pixels[None], tf.tile(kernel, [1, 1, channels, 1]), [1] * 4, "VALID")[0]
    inside = tf.pad(tf.ones_like(smooth, tf.bool), [[1, 1], [1, 1], [0, 0]])
    smooth = tf.where(inside, tf.pad(smooth, [[1, 1], [1, 1], [0, 0]]), pixels)
    return _blend(smooth, image, magnitude)


def posterize(image, magnitude):
    """Keeps the top int(magnitude) bits of each value (8: unchanged)."""
    drop = 8 - tf.cast(magnitude, tf.int32)
    mask = tf.cast(256 - tf.bitwise.left_shift(1, drop), tf.uint8)
    return tf.bitwise.bitwise_and(image, mask)


def solarize(image, magnitude):
    """Values at or above the threshold `magnitude` inverted (255 - v); torchvision's rule."""
    return tf.where(_float(image) >= magnitude, 255 - image, image)


def auto_contrast(image, magnitude):
    """Each channel stretched to 0-255 from its own lowest and highest value; a flat channel stays."""
    del magnitude
    pixels = _float(image)
    low = tf.reduce_min(pixels, axis=[0, 1], keepdims=True)
    high = tf.reduce_max(pixels, axis=[0, 1], keepdims=True)
    flat = high <= low
    scale = tf.where(flat, 1.0, 255.0 / tf.where(flat, 1.0, high - low))
    return _to_uint8((pixels - tf.where(flat, 0.0, low)) * scale)


def equalize(image, magnitude):
    """PIL's ImageOps.equalize per channel: with the histogram's `step` = (pixels - the count of the
    highest value present) // 255, value v becomes (pixels below v + step // 2) // step; a channel
    whose step is 0 (nearly one value) stays."""
    del magnitude
    values = tf.cast(image, tf.int32)
    channels = tf.shape(values)[-1]
    # One 256-bin histogram per channel from one bincount: channel c's values offset by 256 * c.
    offsets = tf.range(channels) * 256
    histogram = tf.reshape(tf.math.bincount(values + offsets, minlength=256 * channels, dtype=tf.int32),
                           [channels, 256])
    highest = 255 - tf.argmax(tf.reverse(tf.cast(histogram > 0, tf.int32), [1]), axis=1, output_type=tf.int32)
    total = tf.reduce_sum(histogram, axis=1)
    step = (total - tf.gather(histogram, highest, batch_dims=1)) // 255
    below = tf.cumsum(histogram, axis=1, exclusive=True)
    table = tf.minimum((below + (step // 2)[:, None]) // tf.maximum(step, 1)[:, None], 255)
    table = tf.where((step > 0)[:, None], table, tf.range(256)[None])
    # Value v of channel c is row c, column v: the flat table's entry 256 * c + v.
    return tf.cast(tf.gather(tf.reshape(table, [-1]), values + offsets), tf.uint8)


def invert(image, magnitude):
    del magnitude
    return 255 - image


def _affine(image, row):
    """The image resampled through keras.ops.image.affine_transform: output pixel (x, y) reads input
    (a0 x + a1 y + a2, b0 x + b1 y + b2) given `row` = [a0, a1, a2, b0, b1, b2]."""
    transform = tf.stack([tf.cast(value, tf.float32) for value in row] + [0.0, 0.0])
    return keras.ops.image.affine_transform(image, transform, interpolation="nearest", fill_mode="constant",
                                            fill_value=0)


def _blend(degenerate, image, magnitude):
    """degenerate + (1 + magnitude) * (image - degenerate), clipped and rounded: PIL's ImageEnhance."""
    return _to_uint8(degenerate + (1.0 + magnitude) * (_float(image) - degenerate))


def _grey(image):
    """The luma [height, width, 1] of an RGB image; a one-channel image is its own."""
    pixels = _float(image)
    return tf.cond(tf.equal(tf.shape(pixels)[-1], 3),
                   lambda: tf.reduce_sum(pixels[..., -3:] * tf.constant(LUMA), axis=-1, keepdims=True),
                   lambda: pixels[..., :1])


def _height_width(image):
    shape = tf.cast(tf.shape(image), tf.float32)
    return shape[0], shape[1]


def _whole(magnitude):
    return tf.cast(tf.cast(magnitude, tf.int32), tf.float32)


def _float(image):
    return tf.cast(image, tf.float32)


def _to_uint8(pixels):
    return tf.cast(tf.clip_by_value(pixels, 0.0, 255.0) + 0.5, tf.uint8)
