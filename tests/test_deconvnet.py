"""The deconvnet (Zeiler & Fergus 2014, Section 2.1) against a projection computed by hand: switches
recorded on the way up, unpooling with them, relu of the reconstruction, transposed filters. Beside
it the gradient and guided backpropagation, which differ from it only at the ReLUs; LRN passed down
unchanged; builders' padded and ceil-mode max pools going back through their switches; and ZFNet
itself, built in-process at a small input."""

import collections

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import compose

import builders
from builders.geometry import Geometry
from builders.layers import LocalResponseNormalization
from builders.pooling import maxpool
from runner.architecture.tables import model_spec
from runner.visualize import deconvnet, guided

# conv1: a Sobel filter and nearly its negation, so where one channel's 2x2 pool window is all positive
# the other's is often all negative: a dead window, whose switch is its first cell (all tie at 0, and
# TensorFlow's max-pool gradient, like the loop below, takes the first maximum).
SOBEL = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
W1 = np.stack([SOBEL, -SOBEL + 0.25], axis=-1)[:, :, None, :]  # [3, 3, 1, 2]
B1 = np.array([0.1, -0.2])
# conv2: 2x2 over the two pooled channels, weights of both signs.
W2 = np.array([[[1.0, -0.5], [-1.0, 0.75]], [[0.5, 1.0], [-0.25, -1.0]]])[..., None]  # [2, 2, 2, 1]
B2 = np.array([0.5])


# by hand, with explicit loops


def convolved(x, w, b):
    """A 'valid' convolution (Keras's cross-correlation): x [H, W, Cin], w [k, k, Cin, Cout]."""
    k, out = w.shape[0], w.shape[-1]
    height, width = x.shape[0] - k + 1, x.shape[1] - k + 1
    y = np.zeros((height, width, out))
    for i in range(height):
        for j in range(width):
            for c in range(out):
                y[i, j, c] = np.sum(x[i:i + k, j:j + k, :] * w[..., c]) + b[c]
    return y


def transposed(signal, w, shape):
    """The transposed filter: each output cell's signal painted back over its window; no bias."""
    k = w.shape[0]
    x = np.zeros(shape)
    for i in range(signal.shape[0]):
        for j in range(signal.shape[1]):
            for c in range(signal.shape[2]):
                x[i:i + k, j:j + k, :] += signal[i, j, c] * w[..., c]
    return x


def pooled_with_switches(a, size):
    """Max pooling size x size / size; the switches {(i, j, c): (y, x)}, the first max in each window."""
    height, width, channels = a.shape[0] // size, a.shape[1] // size, a.shape[2]
    pooled, switches = np.zeros((height, width, channels)), {}
    for i in range(height):
        for j in range(width):
            for c in range(channels):
                best = None
                for y in range(i * size, i * size + size):
                    for x in range(j * size, j * size + size):
                        if best is None or a[y, x, c] > a[best[0], best[1], c]:
                            best = (y, x)
                pooled[i, j, c], switches[i, j, c] = a[best[0], best[1], c], best
    return pooled, switches


def unpooled(signal, switches, shape):
    """Each pooled cell's signal put back where its switch says; every other cell gets nothing."""
    a = np.zeros(shape)
    for (i, j, c), (y, x) in switches.items():
        a[y, x, c] += signal[i, j, c]
    return a


def lrn(a, radius, bias, alpha, beta):
    """b_c = a_c / (bias + alpha * sum over |j - c| <= radius of a_j^2) ** beta."""
    b = np.zeros_like(a)
    for c in range(a.shape[-1]):
        window = a[..., max(0, c - radius):c + radius + 1]
        b[..., c] = a[..., c] / (bias + alpha * np.sum(window ** 2, axis=-1)) ** beta
    return b


RELU_RULES = {
    "gradient": lambda signal, z: signal * (z > 0),
    "guided": lambda signal, z: signal * (z > 0) * (signal > 0),
    "deconvnet": lambda signal, z: np.maximum(signal, 0),  # whatever z was
}


def by_hand(image, method, normalise=None):
    """The top unit projected to `image` [6, 6, 1] by `method`. With `normalise` (the LRN after the pool,
    forward only) only the deconvnet, which passes the reconstruction through it unchanged."""
    assert normalise is None or method == "deconvnet"
    rule = RELU_RULES[method]
    z1 = convolved(image, W1, B1)
    a1 = np.maximum(z1, 0)
    pooled, switches = pooled_with_switches(a1, 2)
    normalised = normalise(pooled) if normalise else pooled
    z2 = convolved(normalised, W2, B2)  # [1, 1, 1]: the unit
    # ZF start from the unit's activation, every other zeroed; the gradients start from 1.
    signal = rule(np.maximum(z2, 0) if method == "deconvnet" else np.ones_like(z2), z2)
    signal = transposed(signal, W2, pooled.shape)
    signal = rule(unpooled(signal, switches, a1.shape), z1)
    return transposed(signal, W1, image.shape)


def hand_net(with_lrn=False):
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(2, 3, activation="relu", name="c1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    if with_lrn:
        x = LocalResponseNormalization(depth_radius=1, bias=1.0, alpha=1.0, beta=0.75, name="norm")(x)
    x = keras.layers.Conv2D(1, 2, activation="relu", name="c2")(x)
    model = keras.Model(inputs, x)
    model.get_layer("c1").set_weights([W1, B1])
    model.get_layer("c2").set_weights([W2, B2])
    return model


def images(count=8):
    return np.random.default_rng(3).normal(size=(count, 6, 6, 1)).astype(np.float32)


def images_differing(a, b) -> int:
    return int((~np.isclose(a, b, atol=1e-5).all(axis=(1, 2, 3))).sum())


def test_the_deconvnet_is_the_hand_projection_and_neither_gradient_nor_guided():
    model, x = hand_net(), images()
    projected, counts = deconvnet.projections(model, x, channel=0)
    plain = guided.input_gradients(model, x, channel=0)
    guided_gradient, _ = guided.guided_gradients(model, x, channel=0)

    assert counts == collections.Counter(relu=2)
    expected = {method: np.stack([by_hand(image, method) for image in x.astype(np.float64)])
                for method in RELU_RULES}
    np.testing.assert_allclose(projected, expected["deconvnet"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(guided_gradient, expected["guided"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(plain, expected["gradient"], rtol=1e-4, atol=1e-5)
    # The three differ, image by image: dead windows' switches get positive signal, which the deconvnet
    # alone passes; live cells get negative signal, which the gradient alone passes. The deconvnet is
    # scaled by the unit's activation, so compare it to guided where the unit is active (scale 1).
    activations = keras.ops.convert_to_numpy(model(x)).reshape(-1)
    active = activations > 0
    assert active.sum() >= 4, "most images must excite the unit for the comparison to mean anything"
    per_unit = projected[active] / activations[active, None, None, None]
    assert images_differing(per_unit, guided_gradient[active]) >= 2
    assert images_differing(guided_gradient, plain) >= 2
    np.testing.assert_array_equal(projected[~active], 0)  # an inactive unit has nothing to project


def test_lrn_passes_the_reconstruction_down_unchanged():
    model, x = hand_net(with_lrn=True), images()
    projected, counts = deconvnet.projections(model, x, channel=0)

    def normalise(a):
        return lrn(a, radius=1, bias=1.0, alpha=1.0, beta=0.75)

    expected = np.stack([by_hand(image, "deconvnet", normalise) for image in x.astype(np.float64)])
    np.testing.assert_allclose(projected, expected, rtol=1e-4, atol=1e-5)
    assert counts == collections.Counter(relu=2, lrn=1)
    assert np.abs(expected).max() > 0.1
    # LRN's own gradient is far from the identity here: a deconvnet that kept it would not match.
    pooled = keras.Model(model.inputs[0], model.get_layer("pool").output)(x)
    assert not np.allclose(normalise(keras.ops.convert_to_numpy(pooled)), keras.ops.convert_to_numpy(pooled), atol=0.05)


def test_other_activations_get_the_relu_rule_without_their_derivative():
    """LeNet's tanh: ZF define no rule for it; the reconstruction is rectified and nothing else."""
    rng = np.random.default_rng(1)
    inputs = keras.Input((1, 1, 3))
    x = keras.layers.Conv2D(4, 1, activation="tanh", name="c1")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, activation="sigmoid", name="c2")(x))
    w1, w2 = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    model.get_layer("c1").set_weights([w1.reshape(1, 1, 3, 4), np.zeros(4)])
    model.get_layer("c2").set_weights([w2.reshape(1, 1, 4, 2), np.zeros(2)])
    x = rng.normal(size=(16, 1, 1, 3)).astype(np.float32)
    projected, counts = deconvnet.projections(model, x, channel=1)
    assert counts == collections.Counter(tanh=1, sigmoid=1)

    unit = 1 / (1 + np.exp(-(np.tanh(x.reshape(16, 3) @ w1) @ w2[:, 1])))  # sigmoid(c2) at channel 1
    signal = np.maximum(unit[:, None] * np.eye(2)[1], 0) @ w2.T  # relu, no sigmoid'(x), the filter
    expected = np.maximum(signal, 0) @ w1.T  # relu, no tanh'(x), the filter
    np.testing.assert_allclose(projected.reshape(16, 3), expected, rtol=1e-4, atol=1e-5)
    assert any("tanh" in line and "sigmoid" in line for line in deconvnet.caveats(counts))


def test_what_is_swapped_is_put_back_when_the_projection_raises():
    model = hand_net(with_lrn=True)
    x = images(2)
    before = guided.input_gradients(model, x, channel=0)
    with pytest.raises(Exception, match="(?i)index|out of range|bounds"):
        deconvnet.projections(model, x, channel=3)  # the output has one channel: fails inside the swap
    assert [model.get_layer(name).activation for name in ("c1", "c2")] == [keras.activations.relu] * 2
    assert all("call" not in vars(layer) for layer in model.layers)
    np.testing.assert_array_equal(guided.input_gradients(model, x, channel=0), before)


@pytest.mark.parametrize(("padding", "ceil_mode"), [("valid", False), (1, False), ("valid", True), (1, True)])
def test_builders_max_pools_go_back_through_their_switches(padding, ceil_mode):
    """Unpooling is the max pool's gradient, also over builders' -inf padding and ceil mode's overhang."""
    size, kernel, stride = 8, 3, 2
    window = Geometry(kernel, stride, padding, ceil_mode)
    inputs = keras.Input((size, size, 2))
    model = keras.Model(inputs, maxpool(inputs, name="pool", pool_size=kernel, strides=stride,
                                        padding=padding, ceil_mode=ceil_mode))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, size, size, 2)).astype(np.float32)
    out = window.output_size(size)
    signal = rng.normal(size=(1, out, out, 2)).astype(np.float32)
    x_tensor = keras.ops.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x_tensor)
        pooled = model(x_tensor)
    gradient = tape.gradient(pooled, x_tensor, output_gradients=signal).numpy()[0]

    before, _ = window.pads(size)
    expected = np.zeros((size, size, 2))
    for i in range(out):
        for j in range(out):
            for c in range(2):
                cells = [(y, z) for y in range(i * stride - before, i * stride - before + kernel)
                         for z in range(j * stride - before, j * stride - before + kernel)
                         if 0 <= y < size and 0 <= z < size]  # a padded cell (-inf) never wins
                y, z = max(cells, key=lambda cell: x[0, cell[0], cell[1], c])
                assert pooled[0, i, j, c] == x[0, y, z, c]
                expected[y, z, c] += signal[0, i, j, c]
    assert pooled.shape == (1, out, out, 2)
    np.testing.assert_allclose(gradient, expected, rtol=1e-6)


def test_zfnet_projections_through_its_lrn_and_ceil_mode_pools():
    spec = model_spec(compose("model=zfnet", "model.input_shape=[64,64,3]"))
    keras.utils.set_random_seed(0)
    model = builders.build(spec).model
    probe = keras.Model(model.inputs[0], model.get_layer("conv5_relu").output)  # 3x3x256, past both LRNs
    x = np.random.default_rng(0).normal(size=(3, 64, 64, 3)).astype(np.float32)
    channel = int(np.argmax(keras.ops.convert_to_numpy(probe(x)).min(axis=0).max(axis=(0, 1))))  # live in all
    plain = guided.input_gradients(probe, x, channel)

    projected, counts = deconvnet.projections(probe, x, channel)
    guided_gradient, _ = guided.guided_gradients(probe, x, channel)
    assert counts == collections.Counter(relu=5, lrn=2)
    assert np.isfinite(projected).all() and (np.abs(projected).max(axis=(1, 2, 3)) > 0).all()

    def direction(a):
        return a / np.linalg.norm(a.reshape(len(a), -1), axis=1)[:, None, None, None]

    for other in (guided_gradient, plain):
        cosine = np.sum(direction(projected) * direction(other), axis=(1, 2, 3))
        assert (cosine < 0.95).all(), cosine
    relus = [layer for layer in probe.layers if isinstance(layer, keras.layers.Activation)]
    assert len(relus) == 5 and all(layer.activation is keras.activations.relu for layer in relus)
    assert all("call" not in vars(layer) for layer in probe.layers)
    np.testing.assert_array_equal(guided.input_gradients(probe, x, channel), plain)
    assert len(deconvnet.caveats(counts)) == 1 and "2 LRN" in deconvnet.caveats(counts)[0]
