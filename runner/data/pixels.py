"""An example's pixels, read through a view: from encoded bytes (JPEG, PNG, ...) or from a tensor.

A view is `view(shape, read)`: `shape` is the image's [height, width] and `read(y, x, h, w)` returns
that window as uint8 [h, w, channels]. A view decides which window it needs from the shape alone, so
a JPEG decodes only that window (`tf.image.decode_and_crop_jpeg`), and returns uint8 pixels: batches
stay a quarter of float32's size on the host and on the way to the device, which normalises them
(runner.training.steps), where it is nearly free.
"""

import tensorflow as tf

JPEG_MAGIC = b"\xff\xd8\xff"  # SOI marker + the first byte of the next marker (JFIF, Exif, ...)

# ITU-R BT.601 luma weights, as PIL's "L" conversion and torchvision's rgb_to_grayscale use them
# (tf.image.rgb_to_grayscale rounds red to 0.2989). A tuple: a tf.constant would start TensorFlow on import.
LUMA = (0.299, 0.587, 0.114)


def encoded(data: tf.Tensor, channels: int, view):
    """Calls `view` on an encoded image; any format TensorFlow decodes, with `channels` (1 or 3).

    Decoding always asks for RGB, which every format and colour space gives (gray, CMYK and YCCK
    JPEGs, palette and RGBA PNGs, GIFs: TensorFlow refuses one channel for CMYK JPEGs and GIFs);
    a one-channel model then gets the luma.
    """
    as_channels = tf.image.rgb_to_grayscale if channels == 1 else tf.identity

    def jpeg():
        def read(y, x, h, w):
            return as_channels(tf.image.decode_and_crop_jpeg(data, tf.stack([y, x, h, w]), channels=3))

        return view(tf.image.extract_jpeg_shape(data)[:2], read)

    def other():  # PNG, GIF, BMP: no partial decoding, so decode the whole image and slice it
        image = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
        return decoded(as_channels(image), view)

    # By content, not by file name: ILSVRC-2012 has a PNG named .JPEG (n02105855_2933).
    return tf.cond(tf.strings.substr(data, 0, len(JPEG_MAGIC)) == JPEG_MAGIC, jpeg, other)


def decoded(image: tf.Tensor, view):
    """Calls `view` on an image tensor [height, width, channels] (uint8, or float in [0, 1])."""
    image = tf.image.convert_image_dtype(image, tf.uint8, saturate=True)
    return view(tf.shape(image)[:2], lambda y, x, h, w: image[y : y + h, x : x + w])


def resize(image: tf.Tensor, size) -> tf.Tensor:
    """uint8 pixels resized to `size`: bilinear, half-pixel centres, no antialiasing (as TF's
    ImageNet pipelines: antialiasing doubles the CPU time). Resized as float32 (TensorFlow's uint8
    kernel is slower) and rounded back: a bilinear pixel mixes its neighbours, so stays in 0 to 255."""
    return to_uint8(tf.image.resize(tf.cast(image, tf.float32), size))


def to_uint8(pixels: tf.Tensor) -> tf.Tensor:
    """Interpolated pixels (float, each a mix of uint8 neighbours, so within 0 to 255) rounded."""
    return tf.cast(pixels + 0.5, tf.uint8)
