"""Zeiler & Fergus's Figure 2 for a row: the receptive-field crops checked against the describe
report's field and jump and against where a unit's gradient really lands; the scores taken before a
saturating activation; the figure's size."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import builders
from builders.report import report
from helpers import compose, png_size, row
from runner.architecture.tables import model_spec
from runner.visualize import crops, figure2, figures
from runner.visualize.row_layers import model_rows
from runner.visualize.scan import scan
from runner.visualize.scores import pre_activation

# valid, symmetric integer padding, and Keras's "same" at stride 2 (asymmetric: 0 before, 1 after
# on an even map), each moving the field; average pools, so a unit's gradient fills its whole square.
MIXED_PADDING = [
    {"type": "conv", "filters": 2, "kernel_size": 3, "strides": 2, "padding": 1, "name": "c1"},
    {"type": "avgpool", "pool_size": 2, "strides": 2, "padding": "valid", "name": "p1"},
    {"type": "conv", "filters": 2, "kernel_size": 3, "strides": 2, "padding": "same", "name": "c2"},
    {"type": "conv", "filters": 2, "kernel_size": 3, "strides": 1, "padding": "valid", "name": "c3"},
]


def unit_support(model, layer, y, x, images=None, channel=0):
    """The input pixels (rows, columns) unit (y, x) of `layer`'s output depends on: where its gradient
    is non-zero for any of `images` (default: one image of ones), with every weight and pixel positive
    so that no ReLU or cancellation hides one (a max pool passes only its winner: hence several images)."""
    probe = keras.Model(model.inputs[0], layer.output)
    images = tf.ones((1, *model.inputs[0].shape[1:])) if images is None else tf.convert_to_tensor(images)
    with tf.GradientTape() as tape:
        tape.watch(images)
        unit = tf.reduce_sum(probe(images)[:, y, x, channel])
    rows, columns = np.nonzero(np.abs(tape.gradient(unit, images).numpy()).sum(axis=(0, -1)))
    return (rows.min(), rows.max()), (columns.min(), columns.max())


def positive_model(spec):
    built = builders.build(spec)
    for weight in built.model.weights:
        weight.assign(tf.abs(weight) + 0.01)
    return built


def test_each_crop_is_the_units_receptive_field_where_its_gradient_lands():
    spec = {"name": "mixed", "input_shape": [40, 40, 1],
            "blocks": [*MIXED_PADDING, {"type": "global_avgpool"}, {"type": "dense", "units": 2}]}
    built = positive_model(spec)
    described = report(built)
    model = built.model
    for name in ("c1", "p1", "c2", "c3"):
        layer = next(r.layer for r in model_rows(model, spec) if r.name == name)
        place = crops.placement(model, layer)
        assert (place.field, place.jump) == (row(described, name).receptive_field, row(described, name).jump)
        height = layer.output.shape[1]
        for y, x in [(1, 1), (1, 2), (height - 2, 1)]:
            top, left = place.box(y, x)
            # The square, but for what of it is padding (outside the 40 x 40 image).
            inside = [(max(start, 0), min(start + place.field - 1, 39)) for start in (top, left)]
            assert unit_support(model, layer, y, x) == tuple(inside), (name, y, x)
        assert np.subtract(place.box(1, 2), place.box(1, 1)).tolist() == [0, place.jump]
        assert np.subtract(place.box(2, 1), place.box(1, 1)).tolist() == [place.jump, 0]


@pytest.mark.e2e
@pytest.mark.parametrize(("name", "size", "rows", "expected_exact"), [
    ("zfnet", 96, ["conv1", "pool1", "conv2", "conv5", "pool5"], ["conv1", "pool1", "conv2"]),  # ceil-mode pools
    # "same" at stride 2 and shortcuts
    ("resnet18", 64, ["conv1", "pool1", "conv2_block1", "conv3_block1", "conv5_block2"],
     ["conv1", "pool1", "conv2_block1"]),
])
def test_a_zoo_models_crops_hold_what_its_units_see(name, size, rows, expected_exact):
    """The field and jump are the report's; a middle unit's gradient over a few images never leaves
    its square, and fills it exactly where the square lies in the image (max pools pass one winner per
    window, so deeper squares, mostly padding, are reached only in part)."""
    spec = model_spec(compose(f"model={name}", "data=imagenette", f"model.input_shape=[{size},{size},3]"))
    keras.utils.set_random_seed(0)
    built = positive_model(spec)
    described = report(built)
    by_name = {r.name: r for r in model_rows(built.model, spec)}
    images = np.random.default_rng(0).uniform(0.1, 1, size=(6, size, size, 3)).astype(np.float32)
    exact = []
    for row_name in rows:
        layer = by_name[row_name].layer
        place = crops.placement(built.model, layer)
        assert (place.field, place.jump) == (row(described, row_name).receptive_field, row(described, row_name).jump)
        y = x = layer.output.shape[1] // 2
        (first_row, last_row), (first_column, last_column) = unit_support(built.model, layer, y, x, images)
        top, left = place.box(y, x)
        assert top <= first_row and last_row <= top + place.field - 1, row_name
        assert left <= first_column and last_column <= left + place.field - 1, row_name
        if 0 <= min(top, left) and max(top, left) + place.field <= size:  # the whole square in the image
            assert (first_row, last_row, first_column, last_column) == \
                (top, top + place.field - 1, left, left + place.field - 1), row_name
            exact.append(row_name)
    assert exact == expected_exact


def test_a_crop_past_the_image_is_grey_there():
    image = np.arange(16, dtype=np.float32).reshape(4, 4, 1) / 16
    crop = crops.cropped(image, -1, 2, 3)
    assert crop.shape == (3, 3, 1)
    np.testing.assert_array_equal(crop[0, :, 0], [0.5, 0.5, 0.5])  # above the image
    np.testing.assert_array_equal(crop[1:, :2, 0], image[:2, 2:, 0])
    np.testing.assert_array_equal(crop[:, 2, 0], [0.5, 0.5, 0.5])  # right of it


def tanh_model():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(3, 3, name="c_conv")(inputs)
    x = keras.layers.Activation("tanh", name="c_tanh")(x)
    return keras.Model(inputs, keras.layers.AveragePooling2D(2, name="s")(x))


def test_scores_are_taken_before_a_saturating_activation_and_it_is_put_back(capsys):
    model = tanh_model()
    rng = np.random.default_rng(0)
    # Fixed positive weights: every image drives tanh to saturation, whatever random state tests before left.
    model.get_layer("c_conv").set_weights([rng.uniform(0.05, 0.15, (3, 3, 1, 3)), np.zeros(3)])
    images = rng.uniform(0, 255, size=(12, 8, 8, 1)).astype(np.uint8)
    batches = [(images[:6], np.zeros(6)), (images[6:], np.zeros(6))]
    scanned = scan(model, batches, ["a"], lambda batch: np.asarray(batch, np.float32) / 4, 2, 12, progress=True)
    assert "12/12" in capsys.readouterr().out  # the progress bar, at its end
    assert scanned.scored_before == "c_tanh (tanh)" and "before c_tanh (tanh)" in scanned.score_name()
    saturated = keras.ops.convert_to_numpy(model(images.astype(np.float32) / 4)).max(axis=(1, 2))
    assert np.isclose(saturated, 1.0, atol=1e-3).mean() > 0.5, "the images drive tanh to saturation"
    for channel in range(3):  # each channel's scores, as the figures print them, tell its images apart
        assert len(np.unique(np.round(scanned.peaks[:, channel], 2))) == 12
    assert model.get_layer("c_tanh").activation is keras.activations.tanh
    with pre_activation(model.get_layer("c_conv")) as taken_off:  # a conv without activation: nothing
        assert taken_off is None


@pytest.mark.parametrize("pool", [
    {"type": "maxpool", "pool_size": 3, "strides": 2, "padding": 1},  # -inf padding, then the pool
    {"type": "avgpool", "pool_size": 3, "strides": 2, "ceil_mode": True, "count_padding": False},  # one layer
])
def test_the_saturating_activation_is_found_through_padded_pools(pool):
    spec = {"name": "padded", "input_shape": [16, 16, 1], "blocks": [
        {"type": "conv", "filters": 2, "kernel_size": 3, "activation": "tanh", "name": "c"}, {**pool, "name": "p"},
        {"type": "flatten"}, {"type": "dense", "units": 2}]}
    model = builders.build(spec).model
    with pre_activation(model.get_layer("p")) as taken_off:
        assert taken_off == "c_tanh (tanh)"


def test_figure2_draws_projection_and_patch_pairs_at_its_documented_size(tmp_path):
    spec = {"name": "mixed", "input_shape": [40, 40, 1],
            "blocks": [*MIXED_PADDING, {"type": "global_avgpool"}, {"type": "dense", "units": 2}]}
    model = builders.build(spec).model
    top = next(r for r in model_rows(model, spec) if r.name == "c2")
    probe = keras.Model(model.inputs[0], top.layer.output)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(7, 40, 40, 1), dtype=np.uint8)

    def normalise(batch):
        return np.asarray(batch, np.float32) / 255

    scanned = scan(probe, [(images, np.zeros(7))], ["a"], normalise, 2, 7)
    path = figure2.figure(model, probe, top, scanned.ranked_channels(3)[:2], scanned, normalise, 9, tmp_path)
    assert path.name == "figure2_c2.png"
    assert png_size(path) == figures.grid_size(2, 2 * 7, figure2.TILE)  # 7 images scanned: 7 pairs
