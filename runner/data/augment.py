"""Crops and flips as views (see pixels.py): how a training or evaluation image is cut out.

Crops read only the source pixels under them, so a JPEG decodes only those. `size` is the model's
input (height, width); `ratio` is how much larger than the input the image is resized first.
Views take and give uint8 pixels (pixels.resize resamples them).
"""

import math

import tensorflow as tf

from runner.config.bounds import Choices
from runner.data import policies
from runner.data.pixels import resize, to_uint8
from runner.mistakes.errors import UserError


def cover(shape, size, ratio: float) -> tf.Tensor:
    """The size an image of `shape` is resized to, keeping its aspect, before a crop of `size`.

    It covers size * ratio: for a square input the shorter side becomes round(input * ratio),
    256 for 224 (Krizhevsky et al. 2012, Section 2; Simonyan & Zisserman 2015, Section 3.1).
    """
    shape = tf.cast(shape, tf.float32)
    target = tf.round(tf.constant(size, tf.float32) * ratio)
    return tf.cast(tf.round(shape * tf.reduce_max(target / shape)), tf.int32)


def scaled_window(shape, read, resized, corner, size, *, exact: bool) -> tf.Tensor:
    """The `size` window at `corner` of the image resized to `resized`, reading only the source
    pixels under it (a JPEG decodes only those).

    `exact`: the same pixels as tf.image.resize(image, resized)[window], sampled on its sub-pixel
    grid (tf.image.crop_and_resize), as evaluation wants (data.cache on or off, the same crops).
    Otherwise the window's edges are rounded to whole source pixels and it is resized as it is (TF
    Model Garden's decode-and-crop, then resize): within a source pixel of the exact window, for
    half the CPU time, which a random training crop does not miss.
    """

    def plain():  # already at that size (a cached image): just the window
        return read(corner[0], corner[1], size[0], size[1])

    resample = _exact_window if exact else _nearby_window
    window = tf.cond(tf.reduce_all(tf.equal(resized, shape)), plain,
                     lambda: resample(shape, read, resized, corner, size))
    return tf.ensure_shape(window, [*size, None])


def _nearby_window(shape, read, resized, corner, size):
    step = tf.cast(shape, tf.float32) / tf.cast(resized, tf.float32)  # source pixels per resized pixel
    begin = tf.cast(tf.round(tf.cast(corner, tf.float32) * step), tf.int32)
    extent = tf.cast(tf.round(tf.constant(size, tf.float32) * step), tf.int32)
    extent = tf.clip_by_value(extent, 1, shape - begin)  # rounding may reach one pixel past the edge
    return resize(read(begin[0], begin[1], extent[0], extent[1]), size)


def _exact_window(shape, read, resized, corner, size):
    source = tf.cast(shape, tf.float32)
    step = source / tf.cast(resized, tf.float32)  # per axis, as tf.image.resize
    top_left = tf.cast(corner, tf.float32)
    # Source coordinates of the window's first and last pixel centres.
    first = (top_left + 0.5) * step - 0.5
    last = (top_left + tf.constant(size, tf.float32) - 0.5) * step - 0.5
    start = tf.maximum(tf.floor(first), 0.0)
    stop = tf.minimum(tf.floor(last) + 2.0, source)  # up to the last sample's right neighbour
    begin, extent = tf.cast(start, tf.int32), tf.cast(stop - start, tf.int32)
    patch = tf.cast(read(begin[0], begin[1], extent[0], extent[1]), tf.float32)
    # Enlarging, samples fall up to half a pixel past the image's edge, where tf.image.resize
    # repeats the edge: so does one mirrored pixel around the patch.
    enlarging = tf.reduce_any(step < 1.0)
    margin = tf.cast(enlarging, tf.float32)
    patch = tf.cond(enlarging, lambda: tf.pad(patch, [[1, 1], [1, 1], [0, 0]], mode="SYMMETRIC"), lambda: patch)
    span = tf.cast(extent, tf.float32) - 1.0 + 2.0 * margin  # crop_and_resize boxes: 0 to 1 over it
    box = tf.concat([(first - start + margin) / span, (last - start + margin) / span], 0)
    return to_uint8(tf.image.crop_and_resize(patch[tf.newaxis], box[tf.newaxis], [0], size)[0])


def centre_crop(size, ratio: float):
    """Resize (see `cover`), then the centre `size` crop: the evaluation view, and `none`'s."""

    def view(shape, read):
        resized = cover(shape, size, ratio)
        return scaled_window(shape, read, resized, (resized - size) // 2, size, exact=True)

    return view


def centre_crops(size, ratios):
    """[len(ratios), height, width, channels]: the centre crop (see `centre_crop`) at each ratio, from one
    read of the image. VGG evaluates at several scales (Simonyan & Zisserman 2015, Section 4.2); it runs
    the network densely over each whole image, where we take each scale's centre crop."""

    def view(shape, read):
        image = read(0, 0, shape[0], shape[1])

        def whole(y, x, h, w):
            return image[y : y + h, x : x + w]

        return tf.stack([centre_crop(size, ratio)(shape, whole) for ratio in ratios])

    return view


def random_crop(size, ratio: float, seed):
    """Resize (see `cover`), then a `size` crop anywhere inside (AlexNet's and VGG's recipe)."""

    def view(shape, read):
        resized = cover(shape, size, ratio)
        room = tf.cast(resized - size + 1, tf.float32)  # every corner that keeps the crop inside
        corner = tf.cast(tf.random.stateless_uniform([2], seed) * room, tf.int32)
        return scaled_window(shape, read, resized, tf.minimum(corner, resized - size), size, exact=False)

    return view


def scale_jitter(size, sides: tuple[int, int], seed):
    """VGG's scale jittering (Simonyan & Zisserman 2015, Section 3.1): the shorter side resized to S,
    an integer drawn uniformly from `sides` (for a 224 input; see `side_ratios`), then a random crop."""
    side_seed, crop_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    side = tf.random.stateless_uniform([], side_seed, sides[0], sides[1] + 1, dtype=tf.int32)
    return random_crop(size, tf.cast(side, tf.float32) / REFERENCE_SIDE, crop_seed)


def inception_crop(size, area_range, aspect_range, seed):
    """A random window of area_range of the image's area and aspect_range width/height, resized to
    `size` (Szegedy et al. 2014, Section 6). When 10 draws all fail, the whole image (TF's rule)."""

    def view(shape, read):
        begin, extent, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.concat([shape, [1]], 0), tf.zeros([1, 0, 4]), seed, min_object_covered=0.0,
            aspect_ratio_range=list(aspect_range), area_range=list(area_range), max_attempts=10,
            use_image_if_no_bounding_boxes=True)
        return resize(read(begin[0], begin[1], extent[0], extent[1]), size)

    return view


def ten_crop(size, ratio: float):
    """[10, height, width, channels]: after resizing (see `cover`), the four corner crops and the
    centre crop, then their horizontal mirrors (Krizhevsky et al. 2012, Section 4.1)."""
    height, width = size

    def view(shape, read):
        resized = cover(shape, size, ratio)
        image = resize(read(0, 0, shape[0], shape[1]), resized)
        bottom, right = resized[0] - height, resized[1] - width
        corners = [(0, 0), (0, right), (bottom, 0), (bottom, right), (bottom // 2, right // 2)]
        crops = tf.stack([image[y : y + height, x : x + width] for y, x in corners])
        crops = tf.ensure_shape(crops, [5, height, width, None])  # static: the slices' sizes are known
        return tf.concat([crops, tf.reverse(crops, axis=[2])], 0)

    return view


def resized(size, ratio: float):
    """The whole image resized (see `cover`): what data.cache keeps, to crop afterwards."""

    def view(shape, read):
        return resize(read(0, 0, shape[0], shape[1]), cover(shape, size, ratio))

    return view


def flipped(view, seed):
    """`view`, mirrored left-right with probability 1/2."""
    return lambda shape, read: tf.image.stateless_random_flip_left_right(view(shape, read), seed)


def _random_crop(augment, size, seed):
    return random_crop(size, augment.resize_ratio, seed)


def _scale_jitter(augment, size, seed):
    return scale_jitter(size, jitter_range(augment), seed)


CROPS = Choices("augment.name", "augmentation", {
    "crop_flip": _random_crop,
    "crop": _random_crop,  # the same crop; its config turns the flip off
    "inception": lambda augment, size, seed: inception_crop(
        size, augment.area_range, augment.aspect_range, seed),
    "scale_jitter": _scale_jitter,
    "none": lambda augment, size, seed: centre_crop(size, augment.resize_ratio),
})


def training(augment, size, recolour=None):
    """seed [2] -> the view that prepares one training image under `augment` (conf/augment); `recolour`
    (runner/data/colour.py `recolouring`) changes its colours after the crop and flip."""
    crop = CROPS.of(augment.name)
    finish = policies.finishing(augment, size)  # augment.policy and augment.random_erasing, last

    def view(seed):
        # Three seeds: the first two are those a split in two gives, so crops and flips stay as they were.
        crop_seed, flip_seed, colour_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
        chosen = crop(augment, size, crop_seed)
        chosen = flipped(chosen, flip_seed) if augment.flip else chosen
        return finish(recoloured(chosen, recolour, colour_seed) if recolour else chosen, seed)

    return view


def recoloured(view, recolour, seed):
    """`view`, its pixels then through `recolour(image, seed)`."""
    return lambda shape, read: recolour(view(shape, read), seed)


# augment.scale_range and eval.scales are shorter sides for a 224 input, as the papers give them; for
# another input they scale with it (input * side / 224: [256, 512] is [36, 73] for LeNet's 32).
REFERENCE_SIDE = 224


def side_ratios(key: str, sides) -> list[float]:
    """`sides` (shorter sides for a 224 input) as ratios to the input, as `cover` takes them."""
    if not sides or any(side < REFERENCE_SIDE for side in sides):
        raise UserError(f"{key}={_shown(sides)}: expected shorter sides of at least {REFERENCE_SIDE} (for a 224 "
                        "input, scaled with the input), e.g. [256, 384, 512]")
    return [side / REFERENCE_SIDE for side in sides]


def jitter_range(augment) -> tuple[int, int]:
    """augment.scale_range as (low, high), refused unless 224 <= low <= high."""
    sides = augment.scale_range
    if sides is None or len(sides) != 2 or not REFERENCE_SIDE <= sides[0] <= sides[1]:
        raise UserError(f"augment.scale_range={_shown(sides)}: expected [low, high], {REFERENCE_SIDE} <= low <= high, "
                        "the shorter side's range for a 224 input (VGG: [256, 512])")
    return int(sides[0]), int(sides[1])


def cache_ratio(augment) -> float:
    """What data.cache keeps of a training image: its shorter side at input * this. Scale jittering
    crops from images up to its range's top, so the cache keeps them at that size."""
    return jitter_range(augment)[1] / REFERENCE_SIDE if augment.name == "scale_jitter" else augment.resize_ratio


def _shown(sides) -> str:
    return "null" if sides is None else str(list(sides))


def check_ratio(name: str, ratio: float) -> None:
    """A ratio under 1 would resize the image smaller than the crop taken from it."""
    if not (ratio >= 1 and math.isfinite(ratio)):
        raise UserError(f"{name}={ratio} must be at least 1 (the image is resized to input * ratio, "
                        "then cropped)")
