"""Augmentation policies and random erasing on real pixels (scikit-learn's digits, coloured noise),
each operation against a numpy reference written here from its definition (PIL's, as torchvision's
transforms/autoaugment.py applies them, and Zhong et al. 2020's Algorithm 1)."""

import collections
import functools
import itertools
import math

import numpy as np
import pytest
import sklearn.datasets
import tensorflow as tf

from helpers import compose
from runner.data import augment, erasing, image_ops, pixels, policies
from runner.mistakes.errors import UserError
from runner.session.parts import prepare
from runner.training import loop

SIZE = (16, 16)


def digit() -> np.ndarray:
    """A handwritten 0, 8x8 at 0-16, as uint8 [16, 16, 1] at 0-255."""
    image = sklearn.datasets.load_digits().images[0]
    return np.kron(image * 255 / 16, np.ones([2, 2])).round().astype(np.uint8)[..., None]


def colours(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*SIZE, 3), np.uint8)


def run(op, image, magnitude) -> np.ndarray:
    return op(tf.constant(image), tf.constant(magnitude, tf.float32)).numpy()


def blended(degenerate, image, factor) -> np.ndarray:
    """PIL's ImageEnhance: degenerate + factor * (image - degenerate), clipped to 0-255."""
    return np.clip(degenerate + factor * (image.astype(np.float64) - degenerate), 0, 255)


def luma(image) -> np.ndarray:
    if image.shape[-1] == 1:
        return image.astype(np.float64)
    return (image.astype(np.float64) @ [0.299, 0.587, 0.114])[..., None]


@pytest.mark.parametrize("image", [digit(), colours()], ids=["grey", "rgb"])
@pytest.mark.parametrize("name", policies.NAMES)
def test_each_operation_at_the_lowest_bin_is_the_identity_or_as_torchvision_says(name, image):
    magnitude = policies.magnitudes(SIZE, policies.BINS)[policies.NAMES.index(name), 0]
    out = run(policies.OPERATIONS[name], image, magnitude)
    assert out.dtype == np.uint8 and out.shape == image.shape
    if name == "Solarize":  # bin 0's threshold is 255: only the brightest pixels invert
        np.testing.assert_array_equal(out, np.where(image == 255, 0, image))
    elif name == "Invert":
        np.testing.assert_array_equal(out, 255 - image)
    elif name not in ("AutoContrast", "Equalize"):  # these take no magnitude
        np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize("threshold", [0, 100, 200])
def test_solarize_inverts_the_pixels_at_or_above_the_threshold(threshold):
    image = colours(1)
    np.testing.assert_array_equal(run(image_ops.solarize, image, threshold),
                                  np.where(image >= threshold, 255 - image, image))


@pytest.mark.parametrize("bits", [1, 4, 6])
def test_posterize_keeps_the_top_bits(bits):
    image = colours(2)
    np.testing.assert_array_equal(run(image_ops.posterize, image, bits), (image >> (8 - bits)) << (8 - bits))


@pytest.mark.parametrize("image", [digit(), colours(3)], ids=["grey", "rgb"])
def test_rotate_by_90_degrees_turns_a_square_image_counter_clockwise(image):
    np.testing.assert_array_equal(run(image_ops.rotate, image, 90.0), np.rot90(image))


def test_shear_and_translate_move_pixels_as_the_affine_map_says():
    image = colours(4)
    height, width = SIZE
    sheared, moved = np.zeros_like(image), np.zeros_like(image)
    for y in range(height):
        for x in range(width):
            source = round(x + 0.2 * y)  # PIL's affine (1, 0.2, 0, 0, 1, 0), nearest pixel; 0.2 * y never ends in .5
            if source < width:
                sheared[y, x] = image[y, source]
            if x >= 3:
                moved[y, x] = image[y, x - 3]
    np.testing.assert_array_equal(run(image_ops.shear_x, image, 0.2), sheared)
    np.testing.assert_array_equal(run(image_ops.translate_x, image, 3.7), moved)  # int(3.7) pixels, as torchvision
    np.testing.assert_array_equal(run(image_ops.shear_y, image, 0.2), np.swapaxes(
        run(image_ops.shear_x, np.swapaxes(image, 0, 1), 0.2), 0, 1))


@pytest.mark.parametrize("image", [digit(), colours(5)], ids=["grey", "rgb"])
def test_the_enhancements_blend_with_their_degenerate_images(image):
    grey = luma(image)
    smooth = image.astype(np.float64).copy()  # PIL's SMOOTH filter inside the border
    kernel = np.ones([3, 3, 1]) / 13
    kernel[1, 1] = 5 / 13
    for y in range(1, image.shape[0] - 1):
        for x in range(1, image.shape[1] - 1):
            smooth[y, x] = (image[y - 1 : y + 2, x - 1 : x + 2] * kernel).sum(axis=(0, 1))
    expected = {image_ops.brightness: blended(0.0, image, 1.6), image_ops.color: blended(grey, image, 1.6),
                image_ops.contrast: blended(grey.mean(), image, 1.6), image_ops.sharpness: blended(smooth, image, 1.6)}
    for op, reference in expected.items():
        np.testing.assert_allclose(run(op, image, 0.6), reference, atol=0.5 + 1e-3, err_msg=op.__name__)
    np.testing.assert_array_equal(run(image_ops.color, digit(), 0.9), digit())  # one channel: no colour to change


def pil_equalize(channel: np.ndarray) -> np.ndarray:
    """PIL's ImageOps.equalize of one channel, as PIL writes it: a lookup table built bin by bin."""
    histogram = np.bincount(channel.ravel(), minlength=256)
    present = histogram[histogram > 0]
    step = (present.sum() - present[-1]) // 255 if len(present) > 1 else 0
    if not step:
        return channel
    table, running = [], step // 2
    for count in histogram:
        table.append(min(running // step, 255))
        running += count
    return np.array(table, np.uint8)[channel]


@pytest.mark.parametrize("image", [digit(), colours(6), (colours(7) // 4 + 60).astype(np.uint8)],
                         ids=["grey", "rgb", "dim"])
def test_equalize_and_auto_contrast_follow_pil(image):
    np.testing.assert_array_equal(run(image_ops.equalize, image, 0.0),
                                  np.stack([pil_equalize(image[..., c]) for c in range(image.shape[-1])], -1))
    low, high = image.min(axis=(0, 1)), image.max(axis=(0, 1))
    stretched = (image - low) * (255.0 / (high - low))
    np.testing.assert_allclose(run(image_ops.auto_contrast, image, 0.0), stretched, atol=0.5 + 1e-3)


def counting(monkeypatch, op):
    """Every operation replaced by op(image, magnitude, number of the operation): the image then records
    what ran."""
    replaced = {name: functools.partial(op, number=number) for number, name in enumerate(policies.NAMES)}
    monkeypatch.setattr(policies, "OPERATIONS", replaced)


def draw(policy, image, seeds):
    traced = tf.function(lambda seed: policy(tf.constant(image), seed))
    return [traced(tf.constant([seed, 11], tf.int64)).numpy() for seed in seeds]


def filled(image, value):
    return tf.fill(tf.shape(image), tf.cast(value, tf.uint8))


def test_the_magnitude_tables_are_torchvisions():
    randaugment, wide = policies.magnitudes((224, 331), 31), policies.magnitudes((224, 331), 31, wide=True)
    row = {name: number for number, name in enumerate(policies.NAMES)}
    # RandAugment at M=9 of 0-30: 9/30 of each range (torchvision's linspace over 31 bins).
    assert randaugment[[row["ShearX"], row["Rotate"], row["Brightness"], row["TranslateX"], row["TranslateY"]], 9] \
        == pytest.approx([0.09, 9.0, 0.27, 45.0, 150 / 331 * 224 * 0.3])
    assert randaugment[row["Posterize"], [0, 9, 30]].tolist() == [8, 7, 4]
    assert randaugment[row["Solarize"], [0, 9, 30]] == pytest.approx([255, 178.5, 0])
    assert wide[[row["ShearX"], row["Rotate"], row["TranslateX"], row["Posterize"]], 30] == pytest.approx(
        [0.99, 135, 32, 2])
    assert policies.magnitudes((224, 224), 10)[[row["Rotate"], row["Posterize"]], [9, 8]] == pytest.approx([30, 4])


@pytest.mark.parametrize("ops", [1, 2, 4])
def test_randaugment_applies_exactly_n_operations(monkeypatch, ops):
    counting(monkeypatch, lambda image, magnitude, number: image + 1)
    policy = policies.rand_augment(compose(f"augment.policy_ops={ops}").augment, SIZE)
    for out in draw(policy, digit() // 2, range(5)):
        np.testing.assert_array_equal(out, digit() // 2 + ops)


def test_randaugment_chooses_among_fourteen_at_magnitude_m_with_a_random_sign(monkeypatch):
    counting(monkeypatch, lambda image, magnitude, number: filled(image, number * 2 + tf.cast(magnitude < 0, tf.int32)))
    cfg = compose("augment.policy=randaugment", "augment.policy_ops=1", "augment.policy_magnitude=30")
    outputs = [int(out[0, 0, 0]) for out in draw(policies.rand_augment(cfg.augment, SIZE), digit(), range(700))]
    chosen = collections.Counter(value // 2 for value in outputs)
    assert set(chosen) == set(range(14))  # never Invert (number 14)
    assert all(25 <= count <= 75 for count in chosen.values())  # 50 expected each
    negated = [value % 2 for value in outputs if policies.NAMES[value // 2] in policies.SIGNED]
    assert 0.4 < np.mean(negated) < 0.6


def test_trivialaugment_applies_one_operation_at_a_uniform_bin(monkeypatch):
    monkeypatch.setattr(policies, "magnitudes", lambda size, bins, wide: np.tile(np.arange(bins, dtype=np.float32),
                                                                                 [len(policies.NAMES), 1]))
    counting(monkeypatch, lambda image, magnitude, number: image + filled(image, tf.abs(magnitude) + 1))
    outputs = draw(policies.trivial_augment(compose().augment, SIZE), np.zeros([2, 2, 1], np.uint8), range(620))
    bins = collections.Counter(int(out[0, 0, 0]) - 1 for out in outputs)  # one operation: its bin plus 1
    assert set(bins) == set(range(31)) and all(5 <= count <= 40 for count in bins.values())  # 20 expected


def test_autoaugment_draws_the_imagenet_sub_policies_with_their_probabilities(monkeypatch):
    counting(monkeypatch, lambda image, magnitude, number: image * 15 + number)  # one base-15 digit per step
    outputs = draw(policies.auto_augment(compose().augment, SIZE), np.zeros([1, 1, 1], np.uint8), range(2000))
    seen = collections.Counter(divmod(int(out[0, 0, 0]), 15) for out in outputs)
    expected = collections.Counter()
    identity = policies.NAMES.index("Identity")
    for (first, p, _), (second, q, _) in policies.IMAGENET_POLICY:
        a, b = policies.NAMES.index(first), policies.NAMES.index(second)
        for (x, px), (y, py) in itertools.product([(a, p), (identity, 1 - p)], [(b, q), (identity, 1 - q)]):
            expected[x, y] += px * py / len(policies.IMAGENET_POLICY)
    assert set(seen) <= {pair for pair, chance in expected.items() if chance > 0}
    distance = sum(abs(seen[pair] / len(outputs) - expected[pair]) for pair in expected | seen) / 2
    assert distance < 0.06


def algorithm_1_areas(rng, height, width, count) -> np.ndarray:
    """Zhong et al. 2020, Algorithm 1, in numpy: the erased area fractions of `count` images."""
    areas = []
    while len(areas) < count:
        area = rng.uniform(*erasing.AREA) * height * width
        aspect = rng.uniform(*erasing.ASPECT)
        h, w = math.sqrt(area * aspect), math.sqrt(area / aspect)
        if rng.uniform(0, width) + w <= width and rng.uniform(0, height) + h <= height:
            areas.append(h * w / (height * width))
    return np.array(areas)


def test_random_erasing_fills_a_rectangle_of_the_papers_area_and_aspect_as_often_as_asked():
    height, width = 64, 48
    image = np.zeros([height, width, 3], np.uint8)
    outputs = draw(erasing.random_erasing(0.5), image, range(600))
    areas = []
    for out in outputs:
        changed = (out != image).any(axis=-1)  # random fill: all three channels 0 has a chance of 1 in 2^24
        if not changed.any():
            continue
        rows, columns = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
        h, w = rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1
        assert changed.sum() == h * w  # one solid rectangle
        assert 0.02 * 0.9 <= h * w / (height * width) <= 1 / 3 * 1.1  # rounded to whole pixels
        assert 0.3 * 0.8 <= h / w <= 1 / 0.3 * 1.25
        assert 100 < np.unique(out[changed]).size  # random values, not one fill
        areas.append(h * w / (height * width))
    assert abs(len(areas) / len(outputs) - 0.5) < 4 * math.sqrt(0.25 / len(outputs))
    reference = algorithm_1_areas(np.random.default_rng(0), height, width, 5000)
    assert abs(np.mean(areas) - reference.mean()) < 0.02


def test_the_training_view_repeats_given_the_seed_and_varies_across_seeds():
    cfg = compose("augment.policy=randaugment", "augment.random_erasing=0.5")
    view = augment.training(cfg.augment, SIZE)
    image = colours(8)

    def look(seed):
        return pixels.decoded(tf.constant(image), view(tf.constant([seed, 5], tf.int64))).numpy()

    first = look(1)
    assert first.dtype == np.uint8 and first.shape == (*SIZE, 3)
    np.testing.assert_array_equal(first, look(1))
    assert len({look(seed).tobytes() for seed in range(8)}) == 8


def test_off_by_default_the_crop_and_flip_view_is_passed_on_as_it_is():
    cfg = compose()
    assert cfg.augment.policy is None and cfg.augment.random_erasing == 0

    def view(shape, read):
        return read(0, 0, shape[0], shape[1])

    assert policies.finishing(cfg.augment, SIZE)(view, tf.constant([2, 5], tf.int64)) is view


@pytest.mark.parametrize("override, message", [
    ("augment.policy=augmix", r"^augment.policy: unknown policy 'augmix'; valid: randaugment, trivialaugment, "
                              r"autoaugment$"),
    ("augment.policy_magnitude=31", r"^augment.policy_magnitude=31: expected 0 to 30"),
    ("augment.random_erasing=1.5", r"^augment.random_erasing=1.5: expected a probability, 0 to 1"),
])
def test_a_wrong_policy_setting_is_one_line(override, message):
    cfg = compose("augment.policy=randaugment", override)
    with pytest.raises(UserError, match=message):
        augment.training(cfg.augment, SIZE)


@pytest.mark.e2e
@pytest.mark.parametrize("strategy", ["default", "mirrored"])
def test_randaugment_and_random_erasing_train_a_step(strategy):
    cfg = compose("augment.policy=randaugment", "augment.random_erasing=0.25", "trainer.epochs=1",
                  "trainer.steps_per_epoch=1", "trainer.batch_size=32",
                  f"trainer.strategy={strategy}", *(["trainer.cpu_replicas=2"] if strategy == "mirrored" else []))
    session = prepare(cfg)
    history = loop.fit(session, loop.EpochHooks([])).history
    assert math.isfinite(history["loss"][0])
    assert session.strategy.num_replicas_in_sync == (2 if strategy == "mirrored" else 1)
