"""The papers' own augmentations on real pixels: AlexNet's PCA lighting, VGG's scale jittering and
multi-scale evaluation, GoogLeNet's photometric distortions; each trains under one and two replicas."""

import colorsys
import math

import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf
from PIL import Image

from helpers import compose
from runner.data import augment, colour, colour_statistics, pipeline, pixels, source
from runner.data.digits import split
from runner.mistakes.errors import UserError
from runner.session.parts import prepare
from runner.training import loop
from runner.training.checks import check_trainer
from runner.training.evaluation import final_evaluation


def correlated_images(count: int, shape=(12, 12)) -> np.ndarray:
    """uint8 [count, *shape, 3] whose channels share most of their variation, as natural images' do."""
    rng = np.random.default_rng(0)
    grey = rng.normal(120, 40, (count, *shape, 1))
    return np.clip(grey + rng.normal(0, [15, 8, 4], (count, *shape, 3)), 0, 255).astype(np.uint8)


def reference_components(images: np.ndarray):
    """From the paper's definition: the eigen-decomposition of the pixels' covariance, largest first."""
    colours = images.reshape(-1, images.shape[-1]).astype(float)
    values, vectors = np.linalg.eigh(np.cov(colours, rowvar=False, bias=True))
    return values[::-1], vectors[:, ::-1]


def many(recolour, image: np.ndarray, count: int) -> np.ndarray:
    """`recolour` of `image` under `count` different seeds, uint8 [count, *image.shape]."""
    seeds = tf.data.Dataset.range(count).map(lambda index: tf.stack([index, tf.constant(7, tf.int64)]))
    return np.stack(list(seeds.map(lambda seed: recolour(tf.constant(image), seed)).as_numpy_iterator()))


def photometric(strength: float, channels: int):
    return colour.recolouring(compose(f"augment.photometric={strength}").augment, None, channels)


def test_components_are_the_eigen_decomposition_of_the_pixel_covariance():
    images = correlated_images(40)
    found = colour_statistics.principal_components(source.tensors(images, np.zeros(40)), 3)
    values, vectors = reference_components(images)  # 12x12 is under the grid: every pixel counts
    np.testing.assert_allclose(np.square(found.stdevs), values, rtol=1e-6)
    np.testing.assert_allclose(np.abs(np.sum(np.array(found.vectors) * vectors.T, axis=1)), 1.0, atol=1e-6)


def test_components_of_image_files_are_kept_in_the_cache(tmp_path, monkeypatch):
    paths = []
    for index, image in enumerate(correlated_images(6, (40, 50))):
        paths.append(str(tmp_path / f"{index}.png"))
        Image.fromarray(image).save(paths[-1])
    files = source.files(paths, np.zeros(6), 3)
    first = colour_statistics.principal_components(files, 3)
    values, _ = reference_components(np.stack([np.asarray(Image.open(path)) for path in paths]))
    np.testing.assert_allclose(np.square(first.stdevs), values, rtol=1e-6)  # 40x50: under the grid, every pixel
    monkeypatch.setattr(colour_statistics, "_moments", lambda *args: pytest.fail("decoded again"))
    assert colour_statistics.principal_components(files, 3) == first


def test_pca_lighting_shifts_every_pixel_by_one_vector_distributed_as_the_paper_says():
    # Cov(sum_i alpha_i sqrt(lambda_i) p_i) = strength^2 * sum_i lambda_i p_i p_i^T = strength^2 * covariance.
    covariance = np.array([[900.0, 700, 500], [700, 800, 450], [500, 450, 400]])
    values, vectors = reference_components(np.random.default_rng(1).multivariate_normal([0, 0, 0], covariance, 200000))
    components = colour.Components(tuple(np.sqrt(values)), tuple(map(tuple, vectors.T)))
    image = np.random.default_rng(2).integers(80, 176, (4, 5, 3), np.uint8)  # no shift here reaches 0 or 255
    cfg = compose("augment.pca_lighting=0.5")
    lit = many(colour.recolouring(cfg.augment, components, 3), image, 3000).astype(float)
    shifts = lit - image
    np.testing.assert_allclose(shifts, np.broadcast_to(shifts[:, :1, :1], shifts.shape), atol=1)  # rounding only
    # Rounding each pixel adds a uniform error of variance 1/12 per channel.
    measured = np.cov(shifts.reshape(-1, 3), rowvar=False) - np.eye(3) / 12
    np.testing.assert_allclose(measured, 0.25 * covariance, rtol=0.1, atol=3)


def test_grey_pca_lighting_is_a_brightness_shift_of_the_pixel_std():
    (images, labels), _ = split(0.2)
    found = colour_statistics.principal_components(source.tensors(images[:500], labels[:500]), 1)
    assert found.vectors == ((1.0,),)
    assert found.stdevs[0] == pytest.approx(np.std(images[:500].astype(float)), rel=1e-6)


def scale_of(crop: np.ndarray) -> float:
    """The shorter side a crop of a (100-row) coordinates image was resized to: rows advance by
    100 / side source rows a pixel."""
    return 100 * (len(crop) - 1) / (float(crop[-1, 0, 0]) - float(crop[0, 0, 0]))


def test_scale_jitter_resizes_the_shorter_side_across_the_range_scaled_to_the_input():
    rows, columns = np.mgrid[0:100, 0:150]
    image = np.stack([rows, columns], -1).astype(np.uint8)
    # A 56 input is a quarter of 224: [256, 512] becomes [64, 128].
    seeds = tf.data.Dataset.range(200).map(lambda index: tf.stack([index, tf.constant(3, tf.int64)]))
    crops = seeds.map(lambda seed: pixels.decoded(tf.constant(image), augment.scale_jitter((56, 56), (256, 512), seed)))
    sides = [scale_of(crop) for crop in crops.as_numpy_iterator()]
    assert 64 * 0.97 <= min(sides) < 72 and 120 < max(sides) <= 128 * 1.03
    assert 0.4 < np.mean(np.array(sides) < 96) < 0.6  # uniform: half below the middle
    assert augment.cover((375, 500), (224, 224), 300 / 224).numpy().tolist() == [300, 400]  # at 224: S itself


def pipeline_crop(view, image: np.ndarray) -> np.ndarray:
    return pixels.decoded(tf.constant(image), view).numpy()


@pytest.mark.parametrize("scale_range", ["[200,512]", "[512,256]", "[256]", "null"])
def test_a_scale_range_no_224_crop_fits_is_refused(scale_range):
    cfg = compose("augment=scale_jitter", f"augment.scale_range={scale_range}")
    with pytest.raises(UserError, match=r"^augment.scale_range=.*: expected \[low, high\], 224 <= low <= high"):
        augment.jitter_range(cfg.augment)


def test_multiscale_views_are_the_centre_crops_at_each_scale():
    image = np.random.default_rng(3).integers(0, 256, (45, 61, 3), np.uint8)
    ratios = augment.side_ratios("eval.scales", [224, 336, 448])
    views = pipeline_crop(augment.centre_crops((16, 16), ratios), image)
    assert views.shape == (3, 16, 16, 3)
    for crop, ratio in zip(views, ratios):
        np.testing.assert_array_equal(crop, pipeline_crop(augment.centre_crop((16, 16), ratio), image))
    with pytest.raises(UserError, match=r"^eval.scales=\[224, 200\]: expected shorter sides of at least 224"):
        augment.side_ratios("eval.scales", [224, 200])


def test_a_multiscale_objective_needs_eval_scales():
    with pytest.raises(UserError, match=r"^sweep.objective=eval_top1_multiscale: expected eval.scales"):
        check_trainer(compose("sweep.objective=eval_top1_multiscale"))


def test_photometric_moves_brightness_saturation_and_hue_within_tf_slims_ranges():
    rgb = np.array([150, 110, 90], np.uint8)  # no distortion below takes it past 0 or 255
    image = np.broadcast_to(rgb, (3, 4, 3)).copy()
    out = many(photometric(1.0, 3), image, 400)
    np.testing.assert_array_equal(out, np.broadcast_to(out[:, :1, :1], out.shape))  # a flat image stays flat
    hue, saturation, value = colorsys.rgb_to_hsv(*(rgb / 255))
    hsv = np.array([colorsys.rgb_to_hsv(*(pixel / 255)) for pixel in out[:, 0, 0]])
    # Brightness adds to V alone, saturation scales the chroma S * V alone, hue turns H alone (a flat
    # image's contrast is itself): each range appears whole, and nothing beyond it.
    brightness = (hsv[:, 2] - value) * 255
    chroma = hsv[:, 1] * hsv[:, 2] / (saturation * value)
    turn = (hsv[:, 0] - hue + 0.5) % 1 - 0.5
    for measured, low, high, slack in [(brightness, -32, 32, 1.5), (chroma, 0.5, 1.5, 0.04), (turn, -0.2, 0.2, 0.01)]:
        assert low - slack <= measured.min() < low + (high - low) / 8
        assert high - (high - low) / 8 < measured.max() <= high + slack


def test_grey_photometric_is_brightness_and_contrast():
    image = np.full((4, 6, 1), 100, np.uint8)
    image[:, 3:] = 160
    out = many(photometric(0.5, 1), image, 300).astype(float)
    contrast = (out[:, 0, 3, 0] - out[:, 0, 0, 0]) / 60  # the two halves' gap: contrast scales it
    assert 0.75 - 0.02 <= contrast.min() < 0.8 and 1.2 < contrast.max() <= 1.25 + 0.02
    with pytest.raises(UserError, match=r"^augment.photometric=2.5 must be between 0 and 2"):
        colour.photometric(2.5, 3)


@pytest.mark.e2e
@pytest.mark.parametrize("overrides", [
    ["trainer.strategy=default"],
    ["trainer.strategy=mirrored", "trainer.cpu_replicas=2", "model.input_shape=[32,32,3]"],
], ids=["default-grey", "mirrored-rgb"])
def test_the_papers_augmentations_train_and_evaluate(overrides):
    cfg = compose("augment=scale_jitter", "augment.pca_lighting=0.1", "augment.photometric=1.0",
                  "eval.scales=[224,336]", "trainer.epochs=1", "trainer.steps_per_epoch=2", "trainer.batch_size=16",
                  # float32: in bfloat16 a near tie's argmax can differ between the two passes' batchings
                  "trainer.precision=float32", *overrides)
    session = prepare(cfg)
    before = [weight.numpy().copy() for weight in session.model.trainable_weights]
    trained = loop.fit(session, loop.EpochHooks([]))
    assert math.isfinite(trained.history["loss"][0])
    assert all(not np.array_equal(old, new.numpy()) for old, new in zip(before, session.model.trainable_weights))
    metrics = final_evaluation(session, trained.last_evaluation).metrics
    # The reference: each scale's centre crops through the model, softmax averaged here.
    (_, _), (images, labels) = split(cfg.data.val_fraction)
    examples = source.tensors(np.repeat(images, cfg.model.input_shape[2], -1), labels)
    probabilities = []
    for ratio in (1.0, 1.5):
        batches = pipeline.evaluation(examples, augment.centre_crop((32, 32), ratio), batch_size=64)
        logits = np.concatenate([session.model(session.splits.normalise(batch), training=False).numpy()
                                 for batch, _ in batches])
        probabilities.append(tf.nn.softmax(logits).numpy())
    averaged = np.mean(probabilities, axis=0)
    assert metrics["eval_top1_multiscale"] == pytest.approx(np.mean(averaged.argmax(-1) == labels), abs=1e-9)
    top5 = np.mean([label in np.argsort(-row)[:5] for row, label in zip(averaged, labels)])
    assert metrics["eval_top5_multiscale"] == pytest.approx(top5, abs=1e-9)


@pytest.mark.parametrize("experiment, expected", [
    ("alexnet_paper", {"augment.name": "crop_flip", "augment.pca_lighting": 0.1, "eval.ten_crop": True}),
    ("vgg_paper", {"augment.name": "scale_jitter", "augment.scale_range": [256, 512], "eval.scales": [256, 384, 512]}),
    ("googlenet_paper", {"augment.name": "inception", "augment.photometric": 1.0}),
    ("resnet_paper", {"augment.name": "scale_jitter", "augment.scale_range": [256, 480], "augment.pca_lighting": 0.1,
                      "eval.ten_crop": True}),
])
def test_paper_experiments_use_their_papers_augmentations(experiment, expected):
    cfg = compose(f"experiment={experiment}")
    assert {key: OmegaConf.select(cfg, key) for key in expected} == expected


def test_a_scale_range_is_refused_before_the_pipeline_is_built():
    cfg = compose("augment=scale_jitter", "augment.scale_range=[512,256]", "trainer.batch_size=16")
    with pytest.raises(UserError, match=r"^augment.scale_range=\[512, 256\]: expected \[low, high\]"):
        prepare(cfg)
