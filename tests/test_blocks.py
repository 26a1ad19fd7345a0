"""Every registered block type: output shape and parameters on a small input, by hand."""

import ast
import pathlib
import sys

import keras
import numpy as np
import pytest

import builders
from builders import registry
from builders.arguments import PositiveInt
from builders.report import report

# type -> (row arguments, input HxWxC, expected output shape, expected parameters)
CASES = {
    "conv": ({"filters": 8, "kernel_size": 3}, (9, 9, 4), [7, 7, 8], 3 * 3 * 4 * 8 + 8),
    "maxpool": ({"pool_size": 3, "strides": 2}, (9, 9, 4), [4, 4, 4], 0),
    "avgpool": ({"pool_size": 2, "strides": 2, "padding": "same"}, (9, 9, 4), [5, 5, 4], 0),
    "global_avgpool": ({}, (9, 9, 4), [4], 0),
    "flatten": ({}, (3, 3, 4), [36], 0),
    "lrn": ({"depth_radius": 2, "bias": 2.0, "alpha": 1e-4, "beta": 0.75}, (5, 5, 6), [5, 5, 6], 0),
    "dropout": ({"rate": 0.5}, (5, 5, 6), [5, 5, 6], 0),
    "dense": ({"units": 7}, (3, 3, 2), [3, 3, 7], 2 * 7 + 7),
    # 1x1 8, 3x3 reduce 4 -> 6, 5x5 reduce 2 -> 3, pool proj 5: 8 + 6 + 3 + 5 channels.
    "inception": (
        {"b1x1": 8, "b3x3_reduce": 4, "b3x3": 6, "b5x5_reduce": 2, "b5x5": 3, "pool_proj": 5},
        (7, 7, 10), [7, 7, 22],
        (10 * 8 + 8) + (10 * 4 + 4) + (9 * 4 * 6 + 6) + (10 * 2 + 2) + (25 * 2 * 3 + 3) + (10 * 5 + 5),
    ),
    # Figure 2a: 1x1 8, 3x3 6 and 5x5 3 straight on the 10 input channels; the pool passes all 10 on.
    "inception_naive": ({"b1x1": 8, "b3x3": 6, "b5x5": 3}, (7, 7, 10), [7, 7, 8 + 6 + 3 + 10],
                        (10 * 8 + 8) + (9 * 10 * 6 + 6) + (25 * 10 * 3 + 3)),
    # Shape changes (stride 2, 4 -> 8 channels): projection shortcut. BN: 4 weights per channel.
    "basic": ({"filters": 8, "strides": 2}, (8, 8, 4), [4, 4, 8],
              (9 * 4 * 8 + 4 * 8) + (9 * 8 * 8 + 4 * 8) + (4 * 8 + 4 * 8)),
    # basic's two convolutions, no shortcut even where the shape changes.
    "plain": ({"filters": 8, "strides": 2}, (8, 8, 4), [4, 4, 8], (9 * 4 * 8 + 4 * 8) + (9 * 8 * 8 + 4 * 8)),
    "bottleneck": ({"filters": 4, "strides": 1}, (8, 8, 16), [8, 8, 16],
                   (16 * 4 + 4 * 4) + (9 * 4 * 4 + 4 * 4) + (4 * 16 + 4 * 16)),
    # 14 -> 5x5/3 pool -> 4x4 -> 1x1 conv 128 -> 2048 -> fc 1024 -> 10 logits.
    "aux_classifier": ({"units": 10}, (14, 14, 8), [10],
                       (8 * 128 + 128) + (2048 * 1024 + 1024) + (1024 * 10 + 10)),
}


def test_every_registered_block_has_a_case():
    assert sorted(CASES) == builders.registered()


def one_block_spec(block_type, args, input_shape):
    rows = [{"type": block_type, "name": "block", **args}]
    # A side output leaves the main path as it was: still a feature map.
    main_path_is_spatial = registry.lookup(block_type, "").side_output or len(CASES[block_type][2]) == 3
    rows.append({"type": "global_avgpool" if main_path_is_spatial else "flatten"})
    rows.append({"type": "dense", "units": 2})
    return {"name": "probe", "input_shape": list(input_shape), "blocks": rows, "aux_loss_weight": 0.3}


@pytest.mark.parametrize("block_type", sorted(CASES))
def test_block_shape_and_parameters(block_type):
    args, input_shape, output_shape, params = CASES[block_type]
    block_row = report(builders.build(one_block_spec(block_type, args, input_shape))).layers[0]
    assert block_row.output_shape == output_shape
    assert block_row.params == params


def test_basic_block_keeps_an_identity_shortcut_when_the_shape_holds():
    built = builders.build(one_block_spec("basic", {"filters": 4}, (8, 8, 4)))
    names = [layer.name for layer in built.model.layers]
    assert "block_0_conv" not in names and "block_add" in names


def test_plain_block_is_the_basic_block_without_its_shortcut():
    def layer_names(block_type):
        keras.backend.clear_session()
        return [layer.name for layer in builders.build_model(one_block_spec(block_type, {"filters": 8, "strides": 2},
                                                                             (8, 8, 4))).layers]

    basic, plain = layer_names("basic"), layer_names("plain")
    assert [name for name in basic if name not in ("block_0_conv", "block_0_bn", "block_add")] == plain
    assert "block_out" in plain  # the ReLU after the second convolution, where basic has it after the add


def test_naive_inception_has_no_reductions_and_keeps_the_input_channels():
    built = builders.build(one_block_spec("inception_naive", {"b1x1": 2, "b3x3": 3, "b5x5": 4}, (6, 6, 5)))
    convs = [layer for layer in built.model.layers if isinstance(layer, keras.layers.Conv2D)]
    # Every convolution sees the 5 input channels: no 1x1 reduction in front of the 3x3 and 5x5.
    assert sorted((layer.name, layer.kernel_size, layer.input.shape[-1]) for layer in convs) == [
        ("block_1x1_conv", (1, 1), 5), ("block_3x3_conv", (3, 3), 5), ("block_5x5_conv", (5, 5), 5)]
    assert built.model.get_layer("block_concat").output.shape[-1] == 2 + 3 + 4 + 5


def test_conv_with_batch_norm_has_no_bias():
    built = builders.build(one_block_spec("conv", {"filters": 8, "kernel_size": 3, "batch_norm": True}, (9, 9, 4)))
    assert built.model.get_layer("block_conv").bias is None
    assert report(built).layers[0].params == 3 * 3 * 4 * 8 + 4 * 8


def test_integer_padding_pads_each_side():
    # AlexNet conv2: 27x27, 5x5, pad 2 -> 27x27.
    layer = report(builders.build(one_block_spec("conv", {"filters": 2, "kernel_size": 5, "padding": 2},
                                                 (27, 27, 3)))).layers[0]
    assert layer.output_shape == [27, 27, 2]
    assert layer.size_rule == "floor((27 + 2*2 - 5) / 1) + 1 = 27"


def test_grouped_conv_divides_the_weights():
    layer = report(builders.build(one_block_spec("conv", {"filters": 8, "kernel_size": 3, "groups": 2},
                                                 (9, 9, 4)))).layers[0]
    assert layer.params == 3 * 3 * 2 * 8 + 8
    assert layer.macs == 7 * 7 * 8 * 3 * 3 * 2


def test_repeat_keeps_strides_only_on_the_first_application():
    spec = {"name": "probe", "input_shape": [16, 16, 3], "blocks": [
        {"type": "conv", "filters": 4, "kernel_size": 3, "strides": 2, "padding": "same", "repeat": 3, "name": "c"},
        {"type": "flatten"}, {"type": "dense", "units": 2}]}
    rows = report(builders.build(spec)).layers
    assert [(r.name, r.output_shape[0], r.stride) for r in rows[:3]] == [
        ("c_block1", 8, 2), ("c_block2", 8, 1), ("c_block3", 8, 1)]


def test_last_dense_row_is_linear_logits():
    model = builders.build_model(one_block_spec("flatten", {}, (3, 3, 4)))
    assert model.layers[-1].get_config()["activation"] == "linear"
    assert model.get_layer("block").output.shape[-1] == 36


def test_lrn_matches_tensorflow():
    import tensorflow as tf

    inputs = np.random.default_rng(0).normal(size=(2, 5, 5, 9)).astype("float32")
    layer = builders.layers.LocalResponseNormalization(depth_radius=2, bias=2.0, alpha=1e-2, beta=0.75)
    expected = tf.nn.local_response_normalization(inputs, depth_radius=2, bias=2.0, alpha=1e-2, beta=0.75)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(inputs)), expected.numpy(), rtol=1e-5)


def test_model_with_lrn_saves_and_reloads(tmp_path):
    spec = one_block_spec("lrn", CASES["lrn"][0], (5, 5, 6))
    model = builders.build_model(spec)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    inputs = np.random.default_rng(1).normal(size=(1, 5, 5, 6)).astype("float32")
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0), rtol=1e-6)


def test_builders_import_only_keras_and_the_standard_library():
    allowed = {"keras", "builders"} | sys.stdlib_module_names
    for source in (pathlib.Path(builders.__file__).parent).glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] in allowed, f"{source.name} imports {module}"


def test_registry_is_the_only_map_from_type_strings():
    assert registry.lookup("conv", "model.blocks[0]").fn is builders.layers.conv


def test_no_builder_module_names_a_block_type_but_where_it_registers():
    """What the interpreter and the report need of a block is its registered metadata, never a
    table or an if over type names (docs/architecture.md, "Style the code follows")."""
    types = set(builders.registered())
    for source in (pathlib.Path(builders.__file__).parent).glob("*.py"):
        tree = ast.parse(source.read_text())
        registering = {id(call.args[0]) for call in ast.walk(tree) if isinstance(call, ast.Call)
                       and getattr(call.func, "id", None) == "register" and call.args}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in types and id(node) not in registering:
                raise AssertionError(f"{source.name}:{node.lineno} names block type {node.value!r}")


def test_block_metadata_names_the_blocks_own_arguments():
    def probe(x, *, name: str, size: PositiveInt = 1):
        return x

    with pytest.raises(RuntimeError, match="'kernel_size', not an argument"):
        registry.register("probe_block", kernel="kernel_size")(probe)
    with pytest.raises(RuntimeError, match="stride_defaults_to_kernel needs kernel"):
        registry.register("probe_block", stride_defaults_to_kernel=True)(probe)
    assert "probe_block" not in builders.registered()


@pytest.mark.parametrize(("block_type", "args", "stride"), [
    ("conv", {"filters": 2, "kernel_size": 3}, 1),  # a convolution steps by 1
    ("maxpool", {"pool_size": 3}, 3), ("avgpool", {"pool_size": 2}, 2),  # a pooling window by its size
    ("maxpool", {"pool_size": 3, "strides": 1}, 1),
])
def test_a_window_rows_stride_defaults_as_in_keras(block_type, args, stride):
    layer = report(builders.build(one_block_spec(block_type, args, (9, 9, 2)))).layers[0]
    assert (layer.kernel, layer.stride) == (args.get("kernel_size") or args["pool_size"], stride)
    assert layer.output_shape[0] == (9 - layer.kernel) // stride + 1
