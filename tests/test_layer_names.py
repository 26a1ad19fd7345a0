"""The naming rule that maps a model's layers back onto its rows (builders/names.py), on every zoo model.

A saved model is read back without its builder (`python -m runner.visualize`), so which row made a
layer must follow from the layer's name alone, and be exactly what the builder made.
"""

import keras
import pytest
from helpers import CONF, MODEL_NAMES
from omegaconf import OmegaConf

import builders
from builders.model import plan
from builders.names import layers_by_row, row_of_layer

SMALL = 96  # names do not depend on the input size; the 224 VGGs take seconds to build


def zoo_spec(name: str) -> dict:
    """The model file as builders take it, straight from conf/model/ (the 10-way head of data=digits)."""
    node = OmegaConf.create({"model": OmegaConf.load(CONF / "model" / f"{name}.yaml"), "data": {"num_classes": 10}})
    spec = OmegaConf.to_container(node.model, resolve=True)
    height, _, channels = spec["input_shape"]
    if height > SMALL:
        spec["input_shape"] = [SMALL, SMALL, channels]
    return spec


def graph_layers(applied) -> list[str]:
    """The truth: the layers of the functional graph between a row's input and its output."""
    graph = keras.Model(applied.inputs, applied.output)
    return [layer.name for layer in graph.layers if not isinstance(layer, keras.layers.InputLayer)]


def names_by_row(model, spec) -> dict[str, tuple[list[str], str]]:
    return {name: ([layer.name for layer in row.layers], row.output.name)
            for name, row in layers_by_row(model, plan(spec)).items()}


@pytest.mark.e2e
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_layer_belongs_to_exactly_the_row_that_made_it(name):
    spec = zoo_spec(name)
    built = builders.build(spec)
    rows = layers_by_row(built.model, plan(spec))
    assert list(rows) == [applied.application.name for applied in built.rows]
    owned = [layer.name for row in rows.values() for layer in row.layers]
    assert sorted(owned) == sorted(layer.name for layer in built.model.layers[1:])  # each once, no input
    for applied in built.rows:
        row = rows[applied.application.name]
        assert sorted(layer.name for layer in row.layers) == sorted(graph_layers(applied)), applied.application
        assert row.output.output is applied.output and row.layers[-1] is row.output


@pytest.mark.parametrize("name", ["googlenet", "resnet18"])
def test_a_saved_model_maps_onto_its_rows_as_the_built_one(name, tmp_path):
    spec = zoo_spec(name)
    model = builders.build_model(spec)
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    assert names_by_row(reloaded, spec) == names_by_row(model, spec)


def test_googlenet_rows_that_extend_another_rows_name():
    rows = names_by_row(builders.build_model(zoo_spec("googlenet")), zoo_spec("googlenet"))
    # conv2_reduce_conv could be conv2's ("_reduce_conv"): the longer row name wins.
    assert rows["conv2_reduce"] == (["conv2_reduce_conv", "conv2_reduce_relu"], "conv2_reduce_relu")
    assert rows["conv2"] == (["conv2_pad", "conv2_conv", "conv2_relu"], "conv2_relu")
    layers, output = rows["inception_3a"]
    # 14 layers, and the explicit pads: 3x3 and 5x5 zeros, the pool branch's -inf.
    assert {"inception_3a_1x1_conv", "inception_3a_3x3_reduce_conv", "inception_3a_3x3_pad", "inception_3a_5x5_pad",
            "inception_3a_5x5_relu", "inception_3a_pool_pad", "inception_3a_pool",
            "inception_3a_pool_proj_conv"} <= set(layers) and len(layers) == 17
    assert output == "inception_3a_concat"
    # A ceil-mode pool pads its overhang with -inf (112 -> 56 needs one more row and column; at 96: 48 -> 24).
    assert rows["pool1"] == (["pool1_pad", "pool1"], "pool1")
    assert rows["aux1"] == (["aux1_pool", "aux1_proj_conv", "aux1_proj_relu", "aux1_flatten", "aux1_fc",
                             "aux1_dropout", "aux1_logits"], "aux1_logits")


def test_repeated_rows_take_keras_applications_names():
    spec = {"name": "probe", "input_shape": [16, 16, 4], "blocks": [
        {"type": "conv", "filters": 4, "kernel_size": 3, "padding": "same", "repeat": 2, "name": "conv1"},
        {"type": "basic", "filters": 8, "strides": 2, "repeat": 2, "name": "conv3"},
        {"type": "global_avgpool", "name": "avgpool"}, {"type": "dense", "units": 2, "name": "fc"}]}
    names = [layer.name for layer in builders.build_model(spec).layers]
    assert names[:5] == ["input", "conv1_block1_conv", "conv1_block1_relu", "conv1_block2_conv", "conv1_block2_relu"]
    # As keras.applications.ResNet50: conv3_block1_0_conv is the projection, _add and _out end a block.
    assert {"conv3_block1_0_conv", "conv3_block1_1_conv", "conv3_block1_2_bn", "conv3_block1_add",
            "conv3_block1_out", "conv3_block2_1_conv", "conv3_block2_out"} <= set(names)
    assert "conv3_block2_0_conv" not in names  # the shape holds: an identity shortcut
    assert names[-2:] == ["avgpool", "fc"]  # a row applied once keeps its plain name


@pytest.mark.parametrize(("layer", "row"), [
    ("conv2_reduce_conv", "conv2_reduce"), ("conv2_conv", "conv2"), ("pool1", "pool1"),
    ("conv4_block10_1_conv", "conv4_block10"), ("conv4_block1_out", "conv4_block1"),
    ("conv4_block100_out", None), ("conv", None), ("conv2reduce_conv", None),
])
def test_a_layer_is_the_row_whose_name_is_its_longest_prefix(layer, row):
    rows = {"conv2", "conv2_reduce", "pool1", "conv4_block1", "conv4_block10"}
    assert row_of_layer(layer, rows) == row


def test_a_row_named_into_another_rows_layers_fails_at_build():
    # basic `x` makes x_1_pad, x_1_conv ... x_out; a row `x_1` would take x_1_pad by its name.
    spec = {"name": "probe", "input_shape": [8, 8, 4], "blocks": [
        {"type": "basic", "filters": 4, "name": "x"}, {"type": "maxpool", "pool_size": 2, "name": "x_1"},
        {"type": "flatten"}, {"type": "dense", "units": 2}]}
    with pytest.raises(builders.SpecError, match=r"^model\.blocks\[1\]\.name: 'x_1' collides .*'x_1_pad'"):
        builders.build(spec)


def test_a_model_from_another_spec_is_one_line():
    spec = zoo_spec("lenet")
    model = builders.build_model(spec)
    renamed = {**spec, "blocks": [{**spec["blocks"][0], "name": "conv1"}, *spec["blocks"][1:]]}
    with pytest.raises(builders.SpecError, match="layer 'c1_conv' of model 'lenet' is named after no row"):
        layers_by_row(model, plan(renamed))
    fewer = {**spec, "blocks": spec["blocks"][1:]}
    with pytest.raises(builders.SpecError, match="layer 'c1_conv'"):
        layers_by_row(model, plan(fewer))
    extra = {**spec, "blocks": [*spec["blocks"][:-1], {"type": "dropout", "rate": 0.5}, spec["blocks"][-1]]}
    with pytest.raises(builders.SpecError, match=r"\(dropout1\): the model has no layer of this row"):
        layers_by_row(model, plan(extra))
