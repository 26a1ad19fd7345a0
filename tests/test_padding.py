"""Exact padding, as the references pad: pools with an int pad (max: -inf; average: count_padding) and ceil mode,
by hand and against TensorFlow's explicit-padding ops, which is what torch's and Caffe's mean."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import builders
from builders.report import report


def spec(row, input_shape):
    rows = [{"name": "block", **row}, {"type": "global_avgpool"}, {"type": "dense", "units": 2}]
    return {"name": "probe", "input_shape": list(input_shape), "blocks": rows}


def apply_row(row, inputs):
    """The row's output on `inputs` (NHWC), through the model the builders make."""
    built = builders.build(spec(row, inputs.shape[1:]))
    probe = keras.Model(built.rows[0].inputs, built.rows[0].output)
    return keras.ops.convert_to_numpy(probe(inputs))


def grid(height, width, offset=0.0):
    """0, 1, 2, ... row by row, plus offset, as a one-image, one-channel NHWC array."""
    return (np.arange(height * width, dtype="float32") + offset).reshape(1, height, width, 1)


def test_an_int_padded_max_pool_pads_minus_infinity():
    # All negative: zero padding would make every border window 0. 3x3/2 pad 1 on 4x4: windows
    # over rows/columns -1..1 and 1..3.
    inputs = grid(4, 4, offset=-100.0)
    out = apply_row({"type": "maxpool", "pool_size": 3, "strides": 2, "padding": 1}, inputs)[0, :, :, 0]
    np.testing.assert_array_equal(out, [[-95, -93], [-87, -85]])  # inputs[1, 1], [1, 3], [3, 1], [3, 3]


def test_average_pool_counts_the_padding_or_not():
    # 3x3/1 pad 1 on [[1, 2, 3], [4, 5, 6], [7, 8, 9]]: a corner window holds 1 + 2 + 4 + 5 = 12
    # in 4 input cells of 9; an edge window 1 + 2 + 3 + 4 + 5 + 6 = 21 in 6.
    inputs = grid(3, 3, offset=1.0)
    row = {"type": "avgpool", "pool_size": 3, "strides": 1, "padding": 1}
    counted = apply_row(row, inputs)[0, :, :, 0]
    keras.backend.clear_session()
    uncounted = apply_row({**row, "count_padding": False}, inputs)[0, :, :, 0]
    np.testing.assert_allclose(counted[0, :2], [12 / 9, 21 / 9], rtol=1e-6)
    np.testing.assert_allclose(uncounted[0, :2], [12 / 4, 21 / 6], rtol=1e-6)
    assert counted[1, 1] == uncounted[1, 1] == 5  # the centre window has no padding


@pytest.mark.parametrize(("pool", "expected"), [
    # 3x3/2 on 4x4 in ceil mode: ceil((4 - 3) / 2) + 1 = 2; the second window in each axis covers
    # rows (columns) 2..4, of which 2..3 exist.
    ("maxpool", [[10, 11], [14, 15]]),
    # Mean of the cells that exist: [0..2]x[0..2] 45 / 9; [0..2]x[2..3] 39 / 6; [2..3]x[0..2] 66 / 6;
    # [2..3]x[2..3] 50 / 4.
    ("avgpool", [[5, 6.5], [11, 12.5]]),
])
def test_ceil_mode_adds_a_last_clipped_window(pool, expected):
    out = apply_row({"type": pool, "pool_size": 3, "strides": 2, "ceil_mode": True}, grid(4, 4))
    np.testing.assert_allclose(out[0, :, :, 0], expected, rtol=1e-6)


def test_ceil_mode_overhang_is_minus_infinity_for_a_max_pool():
    out = apply_row({"type": "maxpool", "pool_size": 3, "strides": 2, "ceil_mode": True}, grid(4, 4, offset=-100.0))
    np.testing.assert_array_equal(out[0, :, :, 0], [[-90, -89], [-86, -85]])


def test_ceil_mode_counts_the_symmetric_pad_never_the_overhang():
    # 3x3/2 pad 1 on 4x4 ones, ceil mode: ceil((4 + 2 - 3) / 2) + 1 = 3 windows per axis, over
    # padded cells 0..2, 2..4, 4..6 (the input is 1..4, pad 0 and 5, overhang 6). Counted cells
    # 3, 3, 2 (torch: hend = min(hstart + k, in + pad)); input cells 2, 3, 1. Per axis 2/3, 1, 1/2.
    row = {"type": "avgpool", "pool_size": 3, "strides": 2, "padding": 1, "ceil_mode": True}
    out = apply_row(row, np.ones((1, 4, 4, 1), "float32"))[0, :, :, 0]
    np.testing.assert_allclose(out, np.outer([2 / 3, 1, 1 / 2], [2 / 3, 1, 1 / 2]), rtol=1e-6)
    keras.backend.clear_session()
    out = apply_row({**row, "count_padding": False}, np.ones((1, 4, 4, 1), "float32"))[0, :, :, 0]
    np.testing.assert_allclose(out, np.ones((3, 3)), rtol=1e-6)


def test_ceil_mode_drops_a_last_window_that_would_start_in_the_padding():
    # 2x2/2 pad 1 on 3: ceil((3 + 2 - 2) / 2) + 1 = 3, but the third window would start at padded
    # cell 4, the right pad (torch: (3 - 1) * 2 >= 3 + 1), so 2.
    row = {"type": "maxpool", "pool_size": 2, "strides": 2, "padding": 1, "ceil_mode": True}
    layer = report(builders.build(spec(row, (3, 3, 1)))).layers[0]
    assert layer.output_shape == [2, 2, 1]
    assert layer.size_rule == "ceil((3 + 2*1 - 2) / 2) + 1, less a last window in the padding = 2"


@pytest.mark.parametrize(("pool", "args", "size", "rule"), [
    ("maxpool", {"padding": 1}, 112, "floor((112 + 2*1 - 3) / 2) + 1 = 56"),  # ResNet's pool1
    ("maxpool", {"ceil_mode": True}, 56, "ceil((56 + 2*0 - 3) / 2) + 1 = 28"),  # GoogLeNet's pool2
    ("avgpool", {"padding": 1, "ceil_mode": True}, 5, "ceil((5 + 2*1 - 3) / 2) + 1 = 3"),
])
def test_the_size_rule_shows_the_pad_and_the_ceil_form(pool, args, size, rule):
    row = {"type": pool, "pool_size": 3, "strides": 2, **args}
    layer = report(builders.build(spec(row, (size, size, 1)))).layers[0]
    assert (layer.size_rule, layer.output_shape[0]) == (rule, int(rule.split()[-1]))


def test_a_pool_in_padding_same_or_valid_builds_the_one_keras_layer_it_always_has():
    for pool, padding, kind in (("maxpool", "same", keras.layers.MaxPooling2D),
                                ("avgpool", "valid", keras.layers.AveragePooling2D)):
        model = builders.build_model(spec({"type": pool, "pool_size": 3, "strides": 2, "padding": padding}, (9, 9, 1)))
        block_layers = [layer for layer in model.layers if layer.name.startswith("block")]
        assert [(type(layer), layer.name, layer.padding) for layer in block_layers] == [(kind, "block", padding)]


@pytest.mark.parametrize(("row", "message"), [
    ({"type": "maxpool", "pool_size": 3, "strides": 2, "padding": "same", "ceil_mode": True},
     "model.blocks[0].ceil_mode: ceil mode needs padding 'valid' or an int"),
    ({"type": "avgpool", "pool_size": 3, "strides": 2, "padding": 2},
     "model.blocks[0].padding: at most half the pool size (1 for 3), got 2"),
])
def test_padding_that_cannot_work_is_one_line_naming_the_key(row, message):
    with pytest.raises(builders.SpecError) as raised:
        builders.model.plan(spec(row, (9, 9, 1)))  # found while planning: nothing is built
    assert str(raised.value).startswith(message)


def test_a_model_with_the_new_layers_saves_and_reloads(tmp_path):
    rows = [{"type": "conv", "filters": 4, "kernel_size": 7, "strides": 2, "padding": 3, "name": "conv1"},
            {"type": "maxpool", "pool_size": 3, "strides": 2, "padding": 1, "name": "pool1"},
            {"type": "avgpool", "pool_size": 3, "strides": 2, "ceil_mode": True, "count_padding": False,
             "name": "pool2"},
            {"type": "global_avgpool"}, {"type": "dense", "units": 3}]
    # 22 -> conv1 11 -> pool1 6 -> pool2 in ceil mode 3, its last window one cell past the map.
    model = builders.build_model({"name": "probe", "input_shape": [22, 22, 3], "blocks": rows})
    kinds = {layer.name: type(layer).__name__ for layer in model.layers}
    assert (kinds["pool1_pad"], kinds["pool2"]) == ("ConstantPadding2D", "PaddedAveragePooling2D")
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    inputs = np.random.default_rng(0).normal(size=(2, 22, 22, 3)).astype("float32")
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0), rtol=1e-6)


def test_a_padded_max_pool_is_torchs_max_pool2d():
    """torch's max_pool2d(k=3, s=2, p=1) is a VALID max pool over the input padded with -inf
    (ResNet's pool1); Keras's 'same' pads 0 before and 1 after instead, and shifts every window."""
    inputs = np.random.default_rng(1).normal(size=(2, 112, 112, 3)).astype("float32")
    padded = tf.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=-np.inf)
    torch_semantics = tf.nn.max_pool2d(padded, 3, 2, "VALID").numpy()
    ours = apply_row({"type": "maxpool", "pool_size": 3, "strides": 2, "padding": 1}, inputs)
    np.testing.assert_array_equal(ours, torch_semantics)
    keras.backend.clear_session()
    same = apply_row({"type": "maxpool", "pool_size": 3, "strides": 2, "padding": "same"}, inputs)
    assert same.shape == ours.shape and not np.array_equal(same, ours)


def test_a_conv_padded_3_is_torchs_conv2d():
    """ResNet's conv1, 7x7/2 pad 3: tf.nn.conv2d with explicit padding [[0, 0], [3, 3], [3, 3], [0, 0]]."""
    rng = np.random.default_rng(2)
    inputs = rng.normal(size=(1, 32, 32, 3)).astype("float32")
    row = {"type": "conv", "filters": 4, "kernel_size": 7, "strides": 2, "padding": 3, "activation": None}
    built = builders.build(spec(row, inputs.shape[1:]))
    conv = built.model.get_layer("block_conv")
    kernel = rng.normal(size=conv.kernel.shape).astype("float32")
    conv.set_weights([kernel, np.zeros(4, "float32")])
    ours = keras.ops.convert_to_numpy(keras.Model(built.rows[0].inputs, built.rows[0].output)(inputs))
    expected = tf.nn.conv2d(inputs, kernel, 2, [[0, 0], [3, 3], [3, 3], [0, 0]]).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)
    assert ours.shape == (1, 16, 16, 4)


def torch_pool(inputs, kind, kernel, stride, pad, ceil_mode, count_include_pad):
    """torch's CPU pooling loop (aten/src/ATen/native/cpu/AvgPoolKernel.cpp, MaxPoolKernel.cpp) in numpy,
    one image, one channel: a window is clipped to the padded input for the divisor, then to the input."""
    size = inputs.shape[0]
    out = (size + 2 * pad - kernel + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    result = np.zeros((out, out), "float64")
    for i in range(out):
        for j in range(out):
            top, left = i * stride - pad, j * stride - pad
            bottom, right = min(top + kernel, size + pad), min(left + kernel, size + pad)
            padded_cells = (bottom - top) * (right - left)
            top, left, bottom, right = max(top, 0), max(left, 0), min(bottom, size), min(right, size)
            window = inputs[top:bottom, left:right]
            divisor = padded_cells if count_include_pad else window.size
            result[i, j] = window.max() if kind == "maxpool" else window.sum() / divisor
    return result


@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
# The last case: ceil mode drops a window that would start in the right pad.
@pytest.mark.e2e
@pytest.mark.parametrize(("size", "kernel", "stride", "pad"), [(7, 3, 2, 1), (8, 3, 2, 0), (9, 5, 3, 2), (5, 2, 2, 1)])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pools_match_torchs_loop(kind, size, kernel, stride, pad, ceil_mode):
    inputs = np.random.default_rng(size * kernel).normal(size=(size, size)).astype("float32") - 3
    for count in ([True, False] if kind == "avgpool" else [True]):
        keras.backend.clear_session()
        row = {"type": kind, "pool_size": kernel, "strides": stride, "padding": pad, "ceil_mode": ceil_mode}
        if kind == "avgpool":
            row["count_padding"] = count
        ours = apply_row(row, inputs[None, :, :, None])[0, :, :, 0]
        np.testing.assert_allclose(ours, torch_pool(inputs, kind, kernel, stride, pad, ceil_mode, count),
                                   rtol=1e-5, atol=1e-6)
