"""Crop and flip geometry on known images: each pixel holds its own (row, column)."""

import numpy as np
import pytest
import tensorflow as tf

from helpers import compose
from runner.data import augment, pixels
from runner.data.splits import evaluation_crop, training_augmentation
from runner.mistakes.errors import UserError

SIZE = (8, 8)
RATIO = 1.25  # the shorter side is resized to round(8 * 1.25) = 10


def coordinates(height: int, width: int) -> np.ndarray:
    """uint8 [height, width, 2]: channel 0 is the row, channel 1 the column."""
    rows, columns = np.mgrid[0:height, 0:width]
    return np.stack([rows, columns], -1).astype(np.uint8)


def noise(seed: int, shape) -> np.ndarray:
    """uint8 pixels, as views take them (runner.data.pixels)."""
    return np.random.default_rng(seed).integers(0, 256, shape, np.uint8)


def look(view, image: np.ndarray) -> np.ndarray:
    return pixels.decoded(tf.constant(image), view).numpy()


def windows(view, image: np.ndarray):
    """The view's output and every (y, x, h, w) window it asked to read."""
    asked = []

    def read(y, x, h, w):
        asked.append(tuple(int(v) for v in (y, x, h, w)))
        return tf.constant(image)[y : y + h, x : x + w]

    return view(tf.constant(image.shape[:2]), read).numpy(), asked


def corner_of(crop: np.ndarray) -> tuple[int, int]:
    """The (row, column) a crop of a coordinates image starts at, checking it is one solid window."""
    y, x = int(crop[0, 0, 0]), int(crop[0, 0, 1])
    height, width = crop.shape[:2]
    np.testing.assert_array_equal(crop, coordinates(height, width) + [y, x])
    return y, x


@pytest.mark.parametrize("shape, resized", [
    ((375, 500), (256, 341)), ((500, 375), (341, 256)), ((256, 256), (256, 256))])
def test_cover_resizes_the_shorter_side_to_input_times_ratio(shape, resized):
    assert augment.cover(shape, (224, 224), 256 / 224).numpy().tolist() == list(resized)


def test_centre_crop_is_centred():
    # 10x14 is already resized (shorter side 10), so the crop is a plain window: rows 1-8, columns 3-10.
    crop = look(augment.centre_crop(SIZE, RATIO), coordinates(10, 14))
    assert corner_of(crop) == (1, 3)


def test_ten_crop_takes_the_corners_the_centre_and_their_mirrors():
    image = coordinates(10, 14)
    crops = look(augment.ten_crop(SIZE, RATIO), image)
    assert crops.shape == (10, 8, 8, 2)
    assert [corner_of(crop) for crop in crops[:5]] == [(0, 0), (0, 6), (2, 0), (2, 6), (1, 3)]
    np.testing.assert_array_equal(crops[5:], crops[:5, :, ::-1])


def test_ten_crop_centre_is_the_centre_crop():
    image = noise(0, (30, 41, 3))
    crops = look(augment.ten_crop(SIZE, RATIO), image).astype(int)
    # Resized whole or sampled under the window: the same pixels, within uint8's rounding.
    np.testing.assert_allclose(crops[4], look(augment.centre_crop(SIZE, RATIO), image), atol=1)


@pytest.mark.parametrize("shape, resized, corner, size", [
    ((8, 8), (37, 37), (2, 2), (32, 32)),  # a digit, enlarged
    ((8, 8), (37, 37), (5, 0), (32, 32)),
    ((50, 70), (29, 41), (3, 9), (16, 16)),  # shrunk
    ((50, 70), (29, 41), (13, 25), (16, 16)),  # to the bottom right corner
    ((40, 30), (40, 30), (7, 4), (24, 24)),  # already the right size: a plain window
    ((200, 300), (100, 150), (10, 20), (32, 32)),
])
def test_the_exact_scaled_window_is_resizing_everything_then_cropping(shape, resized, corner, size):
    image = noise(1, (*shape, 3))
    window, asked = windows(lambda s, read: augment.scaled_window(s, read, resized, corner, size, exact=True), image)
    expected = tf.image.resize(image, resized).numpy()
    (y, x), (h, w) = corner, size
    assert window.dtype == np.uint8
    np.testing.assert_allclose(window, expected[y : y + h, x : x + w], atol=0.5 + 1e-3)  # rounded to uint8
    [(_, _, read_h, read_w)] = asked
    assert read_h * read_w <= shape[0] * shape[1]


@pytest.mark.parametrize("shape, resized, corner, size", [
    ((8, 8), (37, 37), (5, 0), (32, 32)),  # a digit, enlarged
    ((50, 70), (29, 41), (13, 25), (16, 16)),  # shrunk, to the bottom right corner
    ((150, 240), (128, 205), (10, 20), (112, 112)),
    ((240, 150), (205, 128), (93, 16), (112, 112)),
])
def test_the_nearby_scaled_window_samples_within_a_source_pixel_of_the_exact_one(shape, resized, corner, size):
    # Each pixel holds its own (row, column): resampled, it holds where it was sampled from.
    image = coordinates(*shape)
    nearby, _ = windows(lambda s, read: augment.scaled_window(s, read, resized, corner, size, exact=False), image)
    exact, _ = windows(lambda s, read: augment.scaled_window(s, read, resized, corner, size, exact=True), image)
    assert nearby.shape == exact.shape == (*size, 2)
    assert np.abs(nearby.astype(int) - exact).max() <= 1.5  # half a pixel of position, half of rounding


@pytest.mark.parametrize("exact, expected", [(True, (20, 40, 64, 64)), (False, (20, 40, 64, 64))])
def test_scaled_window_reads_only_the_pixels_under_the_window(exact, expected):
    image = np.zeros((200, 300, 1), np.uint8)
    _, [asked] = windows(lambda s, read: augment.scaled_window(s, read, (100, 150), (10, 20), (32, 32), exact=exact),
                         image)
    # Half the size: window pixel centres 10.5-41.5 sample source rows 20.5-82.5, so rows 20-83.
    assert asked == expected


def test_random_crops_lie_inside_the_resized_image_and_vary():
    image = coordinates(10, 14)  # resized already: every crop is a plain window
    corners = [corner_of(look(augment.random_crop(SIZE, RATIO, [seed, 7]), image)) for seed in range(100)]
    assert all(0 <= y <= 2 and 0 <= x <= 6 for y, x in corners)
    assert {y for y, _ in corners} == {0, 1, 2} and {x for _, x in corners} == set(range(7))


def test_random_crops_of_a_large_image_read_a_window_inside_it():
    image = np.zeros((300, 400, 3), np.uint8)
    for seed in range(20):
        crop, [(y, x, h, w)] = windows(augment.random_crop((32, 32), 256 / 224, [seed, 0]), image)
        assert crop.shape == (32, 32, 3)
        assert 0 <= y and y + h <= 300 and 0 <= x and x + w <= 400


def test_the_same_seed_gives_the_same_crop_and_flip():
    cfg = compose("augment=crop_flip")
    image = noise(2, (20, 30, 3))
    view = augment.training(cfg.augment, SIZE)
    first, again = (look(view(tf.constant([3, 4], tf.int64)), image) for _ in range(2))
    np.testing.assert_array_equal(first, again)


def test_flip_mirrors_about_half_the_images():
    image = coordinates(10, 14)
    centre = look(augment.centre_crop(SIZE, RATIO), image)
    flips = []
    for seed in range(40):
        crop = look(augment.flipped(augment.centre_crop(SIZE, RATIO), [seed, 1]), image)
        flips.append(bool(np.array_equal(crop, centre[:, ::-1])))
        assert flips[-1] or np.array_equal(crop, centre)
    assert 10 < sum(flips) < 30


def test_inception_crops_keep_to_the_area_and_aspect_ranges():
    image = np.zeros((100, 120, 3), np.uint8)
    seen = set()
    for seed in range(30):
        crop, [(y, x, h, w)] = windows(augment.inception_crop(SIZE, (0.08, 1.0), (0.75, 4 / 3), [seed, 2]), image)
        assert crop.shape == (8, 8, 3)
        assert 0 <= y and y + h <= 100 and 0 <= x and x + w <= 120
        assert 0.08 * 0.95 <= h * w / (100 * 120) <= 1.0
        if (h, w) != (100, 120):  # the fallback when no draw fits is the whole image
            assert 0.75 * 0.9 <= w / h <= 4 / 3 * 1.1
        seen.add((y, x, h, w))
    assert len(seen) > 20


def test_none_trains_on_the_evaluation_view():
    cfg = compose("augment=none")
    assert training_augmentation(cfg).resize_ratio == evaluation_crop(cfg)  # without weights, eval's default
    image = noise(3, (37, 50, 3))
    view = augment.training(training_augmentation(cfg), SIZE)(tf.constant([0, 0], tf.int64))
    np.testing.assert_array_equal(look(view, image), look(augment.centre_crop(SIZE, evaluation_crop(cfg)), image))


def test_cached_images_crop_like_the_originals():
    # data.cache keeps augment.resized's uint8 image; cropping it matches cropping the original
    # within the one grey level that rounding to uint8 twice can differ by.
    image = noise(4, (45, 61, 3))
    cached = look(augment.resized(SIZE, RATIO), image)
    assert cached.dtype == np.uint8 and cached.shape == (10, 14, 3)
    np.testing.assert_allclose(look(augment.centre_crop(SIZE, RATIO), cached).astype(int),
                               look(augment.centre_crop(SIZE, RATIO), image), atol=1)


def test_unknown_augmentation_is_a_one_line_error():
    cfg = compose("augment.name=cutmix")
    message = r"^augment.name: unknown augmentation 'cutmix'; valid: crop_flip, crop, inception, scale_jitter, none$"
    with pytest.raises(UserError, match=message):
        augment.training(cfg.augment, SIZE)


def test_a_ratio_under_one_is_refused():
    with pytest.raises(UserError, match=r"^eval.resize_ratio=0.5 must be at least 1"):
        augment.check_ratio("eval.resize_ratio", 0.5)
