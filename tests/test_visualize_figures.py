"""The figures of `runner.visualize` drawn in-process, without a store or a trained run: guided
backpropagation against a hand computation, and every figure of the zoo's nested models (ResNet,
GoogLeNet) built here without training. The command on a trained run: tests/test_visualize.py."""

import keras
import numpy as np
import pytest

import builders
from helpers import compose, png_size
from runner.architecture.tables import model_spec
from runner.visualize import figure2, figures, filters, guided
from runner.visualize.render import Options, visualize
from runner.visualize.row_layers import default_rows, model_rows, pick


# guided backpropagation


def reference_gradients(layers, x, channel, *, guided_rule):
    """d a_L[channel] / dx through dense layers [(W, b, f, f')], by hand; with guided_rule, every
    activation passes back only the positive part of its incoming gradient (Springenberg et al.)."""
    inputs, pre_activations = [], []
    a = x
    for weights, bias, f, _ in layers:
        inputs.append(a)
        pre_activations.append(a @ weights + bias)
        a = f(pre_activations[-1])
    g = np.zeros_like(a)
    g[:, channel] = 1.0
    for (weights, _, _, derivative), z in zip(reversed(layers), reversed(pre_activations)):
        g = (np.maximum(g, 0) if guided_rule else g) * derivative(z)
        g = g @ weights.T
    return g


def relu_net(rng):
    """Three ReLUs in the three forms a saved model can hold them: inside Conv2D, a ReLU layer, an Activation layer."""
    inputs = keras.Input((1, 1, 3))
    x = keras.layers.Conv2D(5, 1, activation="relu", name="c1")(inputs)
    x = keras.layers.ReLU(name="r2")(keras.layers.Conv2D(4, 1, name="c2")(x))
    x = keras.layers.Activation("relu", name="a3")(keras.layers.Conv2D(2, 1, name="c3")(x))
    model = keras.Model(inputs, x)
    relu, step = (lambda z: np.maximum(z, 0)), (lambda z: (z > 0).astype(np.float32))
    layers = []
    for name, (fan_in, fan_out) in zip(("c1", "c2", "c3"), ((3, 5), (5, 4), (4, 2))):
        weights, bias = rng.normal(size=(fan_in, fan_out)), rng.normal(size=fan_out) * 0.3
        model.get_layer(name).set_weights([weights.reshape(1, 1, fan_in, fan_out), bias])
        layers.append((weights, bias, relu, step))
    return model, layers, {"relu": 3}


def tanh_net(rng):
    """LeNet's kind: tanh inside the convolutions."""
    inputs = keras.Input((1, 1, 3))
    x = keras.layers.Conv2D(4, 1, activation="tanh", name="c1")(inputs)
    x = keras.layers.Conv2D(2, 1, activation="tanh", name="c2")(x)
    model = keras.Model(inputs, x)
    layers = []
    for name, (fan_in, fan_out) in zip(("c1", "c2"), ((3, 4), (4, 2))):
        weights, bias = rng.normal(size=(fan_in, fan_out)), rng.normal(size=fan_out) * 0.3
        model.get_layer(name).set_weights([weights.reshape(1, 1, fan_in, fan_out), bias])
        layers.append((weights, bias, np.tanh, lambda z: 1 - np.tanh(z) ** 2))
    return model, layers, {"tanh": 2}


@pytest.mark.parametrize("net", [relu_net, tanh_net])
def test_guided_backprop_equals_the_hand_computed_guided_gradient(net):
    rng = np.random.default_rng(0)
    model, layers, kinds = net(rng)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    images = x.reshape(64, 1, 1, 3)
    plain = guided.input_gradients(model, images, channel=0).reshape(64, 3)
    guided_gradient, counts = guided.guided_gradients(model, images, channel=0)
    guided_gradient = guided_gradient.reshape(64, 3)

    assert dict(counts) == kinds
    np.testing.assert_allclose(plain, reference_gradients(layers, x, 0, guided_rule=False), rtol=1e-4, atol=1e-5)
    expected = reference_gradients(layers, x, 0, guided_rule=True)
    np.testing.assert_allclose(guided_gradient, expected, rtol=1e-4, atol=1e-5)
    differ = ~np.isclose(guided_gradient, plain, atol=1e-5).all(axis=1)
    assert differ.sum() >= 10, "negative gradients must be cut off on the way back, changing many images' gradients"
    # Everything is put back: the plain gradient afterwards is the plain gradient before.
    np.testing.assert_allclose(guided.input_gradients(model, images, channel=0).reshape(64, 3), plain)
    assert model.get_layer("c1").activation in (keras.activations.relu, keras.activations.tanh)
    assert all("call" not in vars(layer) for layer in model.layers)


# the options, as the command composes them


def test_the_figures_options_are_the_commands_with_the_schemas_defaults():
    options = Options.of(compose("visualize.top_k=2", "visualize.rows=[conv1]", app="visualize").visualize)
    assert options == Options(top_k=2, rows=["conv1"])
    assert (options.images, options.max_images, options.occlusion_stride) == (8, 512, 0.125)


# the zoo's nested models, built here without training


@pytest.mark.e2e
@pytest.mark.parametrize(("name", "size", "default_rows_expected"), [
    ("resnet18", 64, ["conv1", "conv3_block2", "conv5_block2"]),  # the last is Grad-CAM's default row too
    ("googlenet", 96, ["conv1", "inception_4b", "inception_5b"]),
])
def test_every_figure_of_a_nested_zoo_model(name, size, default_rows_expected, tmp_path):
    spec = model_spec(compose(f"model={name}", "data=imagenette", f"model.input_shape=[{size},{size},3]"))
    keras.utils.set_random_seed(0)
    built = builders.build(spec)
    model = built.model
    rows = model_rows(model, spec)
    # Each row's output layer is the one whose tensor the builder returned for the row.
    main_path = [applied for applied in built.rows if not applied.application.block.side_output]
    assert [row.name for row in rows] == [applied.application.name for applied in main_path]
    assert all(row.layer.output is applied.output for row, applied in zip(rows, main_path))
    assert [row.name for row in default_rows(rows)] == default_rows_expected
    inner = {"resnet18": "conv3_block1_1_conv", "googlenet": "inception_4b_5x5_relu"}[name]  # a layer inside a row
    assert pick(rows, inner, "visualize.rows", model).layer is model.get_layer(inner)

    rng = np.random.default_rng(0)
    batches = [(rng.integers(0, 256, size=(4, size, size, 3), dtype=np.uint8), np.arange(4) % 2) for _ in range(3)]

    def normalise(images):  # as the pipeline's normaliser: uint8 in, about zero mean and unit spread out
        return (np.asarray(images, np.float32) - 127.5) / 64

    options = Options(images=2, feature_channels=4, channels=3, top_k=4, max_images=10)
    paths, notes = visualize(model, spec, batches, ["tench", "springer"], normalise, options, tmp_path)
    last = default_rows_expected[-1]
    expected = {"filters.png": filters.panel_size(64, 7, 7),  # conv1: 64 filters 7x7x3
                **{f"feature_maps_{row}.png": figures.grid_size(2, 1 + 4) for row in default_rows_expected},
                f"top_images_{last}.png": figures.grid_size(3, 4),
                f"projections_{last}.png": figures.grid_size(2, 4),
                f"figure2_{last}.png": figures.grid_size(3, 2 * 9, figure2.TILE),  # 9 of the 12 images
                f"gradcam_{last}.png": figures.grid_size(2, 5, footer=figures.CAPTION),
                "occlusion.png": figures.grid_size(2, 3, footer=figures.CAPTION)}
    assert {path.name: png_size(path) for path in paths} == expected
    # Only ReLUs to guide; the deconvnet's note on GoogLeNet's two LRN layers, passed down unchanged.
    lrn_notes = [] if name == "resnet18" else ["deconvnet: 2 LRN layer(s) passed the reconstruction down unchanged, "
                                               "as the paper's deconvnet has no normalisation"]
    assert notes == lrn_notes

    probe = keras.Model(model.inputs[0], [row for row in rows if row.spatial][-1].layer.output)
    images = normalise(batches[0][0])
    channel = int(np.argmax(keras.ops.convert_to_numpy(probe(images)).max(axis=(0, 1, 2))))  # a live one
    plain = guided.input_gradients(probe, images, channel)
    guided_gradient, counts = guided.guided_gradients(probe, images, channel)
    relus = [layer for layer in probe.layers if getattr(layer, "activation", None) is keras.activations.relu]
    assert dict(counts) == {"relu": len(relus)} and len(relus) > 10
    assert not np.allclose(plain, guided_gradient)
