"""Grad-CAM (Selvaraju et al. 2017) against the paper's formula computed here, and on a network trained to
tell apart images whose class is a patch in a known place; the rows it may explain."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import builders
from helpers import compose
from runner.architecture.tables import model_spec
from runner.mistakes.errors import UserError
from runner.visualize import gradcam, occlusion
from runner.visualize.row_layers import Row, explained_row

SIDE, PATCH = 32, 8
# Class k: a patch of pattern k (bright, horizontal stripes, vertical stripes, a checkerboard) at a random
# place, noise elsewhere. Four classes, not two: with two a network may read one class as "not the other's
# pattern", and then its evidence is nowhere (Grad-CAM rightly shows none).
_ROWS, _COLUMNS = np.mgrid[0:PATCH, 0:PATCH]
PATTERNS = (np.ones((PATCH, PATCH)), _ROWS % 2, _COLUMNS % 2, (_ROWS + _COLUMNS) % 2)


def patch_images(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise images [count, 32, 32, 1] (normalised: about zero mean), their classes and their patches'
    top left corners [count, 2]."""
    labels = rng.integers(0, len(PATTERNS), size=count)
    corners = rng.integers(0, SIDE - PATCH + 1, size=(count, 2))
    images = rng.normal(0.0, 0.3, size=(count, SIDE, SIDE, 1)).astype(np.float32)
    for image, label, (top, left) in zip(images, labels, corners):
        image[top:top + PATCH, left:left + PATCH, 0] += 2.5 * PATTERNS[label]
    return images, labels, corners


@pytest.fixture(scope="module")
def patch_network():
    """A small conv network trained until it tells the four patterns apart, and fresh images to explain."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIDE, SIDE, 1))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="c2")(x)  # 32x32x16: Grad-CAM's row
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(len(PATTERNS), name="logits")(x))
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    rng = np.random.default_rng(0)
    images, labels, _ = patch_images(2048, rng)
    model.fit(images, labels, batch_size=32, epochs=3, verbose=0)  # 192 steps
    test_images, test_labels, test_corners = patch_images(32, rng)
    accuracy = model.evaluate(test_images, test_labels, verbose=0)[1]
    assert accuracy == 1.0, "the network must tell the patterns apart before its explanations mean anything"
    return model, test_images, test_labels, test_corners


def inside(y: int, x: int, corner: np.ndarray) -> bool:
    return corner[0] <= y < corner[0] + PATCH and corner[1] <= x < corner[1] + PATCH


@pytest.mark.e2e
def test_grad_cam_of_the_true_class_peaks_inside_the_patch(patch_network):
    model, images, labels, corners = patch_network
    row = Row("c2", "conv", model.get_layer("c2"), True)
    explained = gradcam.explain(gradcam.explainer(model, row), images, labels)
    assert explained.maps.shape == (len(images), SIDE, SIDE) and (explained.maps >= 0).all()
    for heat, corner in zip(explained.maps, corners):
        assert inside(*np.unravel_index(np.argmax(heat), heat.shape), corner)
    # Guided Grad-CAM is zero where Grad-CAM is, and most of it lies on the patch.
    assert np.all(explained.guided[explained.maps == 0] == 0)
    for guided, (top, left) in zip(np.abs(explained.guided[..., 0]), corners):
        assert guided[top:top + PATCH, left:left + PATCH].sum() > 0.5 * guided.sum()


def overlaps(start: int, side: int, at: int) -> bool:
    """Whether [start, start + side) and the patch's [at, at + PATCH) share a pixel."""
    return start < at + PATCH and at < start + side


@pytest.mark.e2e
def test_occlusion_dips_where_the_patch_is(patch_network):
    model, images, labels, corners = patch_network
    assert occlusion.positions(SIDE, 0.25, 0.125) == (8, [0, 4, 8, 12, 16, 20, 24])
    size, stride = 0.375, 0.125  # a 12-pixel square, 4 pixels a step: 6 x 6 positions, one hides a whole patch
    side, starts = occlusion.positions(SIDE, size, stride)
    calls = []
    counting = keras.Model(model.inputs[0], model.outputs[0])
    counting_call = counting.call
    counting.call = lambda *args, **kwargs: calls.append(1) or counting_call(*args, **kwargs)
    for image, label, corner in zip(images[:6], labels[:6], corners[:6]):
        maps = occlusion.occlude(counting, image, int(label), size, stride, batch_size=16)
        assert maps.probability.shape == maps.predicted.shape == (6, 6)
        i, j = np.unravel_index(np.argmin(maps.probability), maps.probability.shape)
        assert overlaps(starts[i], side, corner[0]) and overlaps(starts[j], side, corner[1]), (i, j, corner)
        # Hiding a place that leaves the patch whole leaves the class as it is, and far more probable.
        far = [[not overlaps(start, side, at) for start in starts] for at in corner]
        clear = np.logical_or.outer(far[0], far[1])
        assert (maps.predicted[clear] == label).all()
        assert maps.probability.min() < maps.probability[clear].min() - 0.2
    assert len(calls) == 6 * 3  # 36 positions in batches of 16: 3 forward passes an image


def reference_grad_cam(model: keras.Model, maps_layer: str, image: np.ndarray, label: int) -> np.ndarray:
    """Eq. 1 and 2 for one image: the feature maps A as a variable, the rest of the network applied to it
    layer by layer, d y^c / d A from the tape, alpha_k its spatial mean, ReLU(sum_k alpha_k A^k)."""
    feature = keras.Model(model.inputs[0], model.get_layer(maps_layer).output)
    maps = tf.Variable(feature(image[None], training=False))
    after = model.layers[[layer.name for layer in model.layers].index(maps_layer) + 1:]
    with tf.GradientTape() as tape:
        x = maps
        for layer in after:
            x = layer(x)
        score = x[0, label]
    gradient = tape.gradient(score, maps)[0].numpy()
    alpha = gradient.mean(axis=(0, 1))
    return np.maximum((maps[0].numpy() * alpha).sum(axis=-1), 0)


def test_grad_cam_is_the_papers_formula():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="maps")(inputs)  # 10x10x6
    x = keras.layers.Flatten(name="flat")(x)
    x = keras.layers.Dense(8, activation="tanh", name="hidden")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="scores")(x))
    images = np.random.default_rng(1).normal(size=(5, 12, 12, 3)).astype(np.float32)
    classes = np.array([0, 1, 2, 1, 0])
    cams, probabilities = gradcam.grad_cam(gradcam.explainer(model, Row("maps", "conv", model.get_layer("maps"),
                                                                        True)), images, classes)
    expected = np.stack([reference_grad_cam(model, "maps", image, label) for image, label in zip(images, classes)])
    np.testing.assert_allclose(cams, expected, rtol=1e-4, atol=1e-6)
    assert (expected > 0).any() and (expected == 0).any()  # the ReLU cut something and kept something
    scores = model(images).numpy()
    np.testing.assert_allclose(probabilities, np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True), rtol=1e-5)


def test_the_rows_grad_cam_explains_are_describes_spatial_rows_of_the_main_path():
    spec = model_spec(compose("model=googlenet", "data=imagenette", "model.input_shape=[96,96,3]"))
    model = builders.build(spec).model
    key = "visualize.gradcam_row"
    assert explained_row(model, spec, None, key).name == "inception_5b"  # the last convolution row
    assert explained_row(model, spec, "inception_4a", key).layer.name == "inception_4a_concat"
    with pytest.raises(UserError, match=r"^visualize.gradcam_row: aux1 is an auxiliary head's row, which the "
                                        r"class score does not pass through; rows: conv1, pool1, .*inception_5b$"):
        explained_row(model, spec, "aux1", key)
    with pytest.raises(UserError, match=r"^visualize.gradcam_row: pool5 gives a 1024 vector \(after global pooling "
                                        r"or flattening\), not feature maps; rows: conv1,"):
        explained_row(model, spec, "pool5", key)
    with pytest.raises(UserError, match=r"^visualize.gradcam_row: the model has no row 'inception_4a_concat'; rows:"):
        explained_row(model, spec, "inception_4a_concat", key)  # a layer, not a row describe names


@pytest.mark.parametrize(("key", "value"), [("occlusion_size", 0), ("occlusion_stride", 1.5)])
def test_occlusion_fractions_outside_zero_to_one_are_refused(key, value):
    options = {"occlusion_size": 0.25, "occlusion_stride": 0.125, key: value}
    with pytest.raises(UserError, match=rf"^visualize.{key}={value}: expected a fraction of the image's side, "
                                        r"in \(0, 1\]$"):
        occlusion.check_fractions(options)
