"""A spec that cannot be built fails with one line naming the row, the key and what is valid."""

import pytest

import builders
from builders import SpecError
from builders.model import _reason, plan


def spec(*rows, input_shape=(32, 32, 3)):
    return {"name": "probe", "input_shape": list(input_shape), "blocks": list(rows)}


HEAD = ({"type": "flatten"}, {"type": "dense", "units": 2})


@pytest.mark.parametrize(
    "bad_spec, message",
    [
        (spec({"type": "convv", "filters": 3}),
         "model.blocks[0].type: unknown block type 'convv'; registered: aux_classifier, avgpool, basic, "
         "bottleneck, conv, dense, dropout, flatten, global_avgpool, inception, inception_naive, lrn, maxpool, "
         "plain"),
        (spec({"type": "conv", "filter": 3, "kernel_size": 3}),
         "model.blocks[0].filter: unknown argument for block 'conv'; valid: filters, kernel_size, strides, "
         "padding, groups, activation, batch_norm"),
        (spec({"type": "conv", "filters": "64", "kernel_size": 3}),
         "model.blocks[0].filters: expected a positive int, got '64'"),
        (spec({"type": "conv", "filters": True, "kernel_size": 3}),
         "model.blocks[0].filters: expected a positive int, got True"),
        # Counts and sizes are bounded in the block's signature: found before Keras sees them.
        (spec({"type": "conv", "filters": -3, "kernel_size": 3}),
         "model.blocks[0].filters: expected a positive int, got -3"),
        (spec({"type": "conv", "filters": 4, "kernel_size": 0}),
         "model.blocks[0].kernel_size: expected a positive int, got 0"),
        (spec({"type": "conv", "filters": 4, "kernel_size": 3, "padding": -1}),
         "model.blocks[0].padding: expected 'valid' or 'same' or an int >= 0, got -1"),
        (spec({"type": "maxpool", "pool_size": 2, "strides": 0}),
         "model.blocks[0].strides: expected a positive int or null, got 0"),
        (spec(*HEAD[:1], {"type": "dense", "units": 0}),
         "model.blocks[1].units: expected a positive int, got 0"),
        (spec({"type": "dropout", "rate": 1.5}),
         "model.blocks[0].rate: expected a number from 0 to 1, got 1.5"),
        (spec({"type": "inception", "b1x1": 64, "b3x3_reduce": 96, "b3x3": 128, "b5x5_reduce": 16, "b5x5": 0,
               "pool_proj": 32}),
         "model.blocks[0].b5x5: expected a positive int, got 0"),
        (spec({"type": "bottleneck", "filters": 64, "strides": -2}),
         "model.blocks[0].strides: expected a positive int, got -2"),
        (spec({"type": "conv", "kernel_size": 3}),
         "model.blocks[0]: block 'conv' needs 'filters'"),
        (spec({"type": "maxpool", "pool_size": 2, "padding": "full"}),
         "model.blocks[0].padding: expected 'valid' or 'same' or an int >= 0, got 'full'"),
        (spec({"type": "maxpool", "pool_size": 2, "padding": 2}),
         "model.blocks[0].padding: at most half the pool size (1 for 2), got 2"),
        (spec({"type": "conv", "filters": 4, "kernel_size": 3, "repeat": 0}),
         "model.blocks[0].repeat: expected a positive int, got 0"),
        (spec({"type": "conv", "filters": 4, "kernel_size": 3, "name": "a"},
              {"type": "conv", "filters": 4, "kernel_size": 3, "name": "a"}),
         "model.blocks[1].name: 'a' is already used by model.blocks[0]"),
        (spec({"type": "conv", "filters": 4, "kernel_size": 3}, {"type": "dense", "units": 2}),
         "model.blocks[1]: the model's output is 30x30x2, not a vector of logits"),
        (spec(*HEAD, input_shape=(32, 32)),
         "model.input_shape: expected [height, width, channels] of positive ints, got [32, 32]"),
    ],
)
def test_bad_rows_fail_before_any_layer_with_the_row_path(bad_spec, message):
    with pytest.raises(SpecError) as raised:
        builders.build(bad_spec)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_argument_errors_are_found_before_any_layer_is_built():
    # Row 0 is fine and row 1 is wrong: nothing is built, so no layer name is ever taken.
    bad = spec({"type": "conv", "filters": 4, "kernel_size": 3, "name": "first"},
               {"type": "conv", "filters": 4, "kernel_size": "big"})
    with pytest.raises(SpecError, match=r"model\.blocks\[1\]\.kernel_size"):
        plan(bad)


def test_a_collapsing_feature_map_names_the_row_and_its_input():
    # 32 -> 11x11/4 -> 6 -> 3x3/2 -> 2 -> 3x3/2 collapses.
    collapsing = spec({"type": "conv", "filters": 4, "kernel_size": 11, "strides": 4},
                      {"type": "maxpool", "pool_size": 3, "strides": 2},
                      {"type": "maxpool", "pool_size": 3, "strides": 2, "name": "pool3"}, *HEAD)
    with pytest.raises(SpecError) as raised:
        builders.build(collapsing)
    assert str(raised.value) == (
        "model.blocks[2] (pool3: maxpool): the feature map collapses: floor((2 + 2*0 - 3) / 2) + 1 = 0 "
        "from a 2x2x4 input; use a larger model.input_shape or remove the row")


def test_a_block_too_big_for_its_input_names_the_row():
    # GoogLeNet's auxiliary classifier pools 5x5: a 4x4 map is too small for it.
    too_small = {**spec({"type": "aux_classifier", "units": 3, "name": "aux1"}, *HEAD, input_shape=(4, 4, 8)),
                 "aux_loss_weight": 0.3}
    with pytest.raises(SpecError,
                       match=r"^model\.blocks\[0\] \(aux1: aux_classifier\): cannot be applied to a 4x4x8 input"):
        builders.build(too_small)


def test_side_outputs_need_a_loss_weight():
    with pytest.raises(SpecError, match=r"^model\.aux_loss_weight: model\.blocks\[0\] is a side output"):
        builders.build(spec({"type": "aux_classifier", "units": 3}, *HEAD, input_shape=(16, 16, 8)))


def test_invalid_values_keras_rejects_name_the_row():
    with pytest.raises(SpecError, match=r"^model\.blocks\[0\] \(conv1: conv\): .*rellu"):
        builders.build(spec({"type": "conv", "filters": 4, "kernel_size": 3, "activation": "rellu"}, *HEAD))


def test_keras_terminal_styling_is_stripped_from_the_reason():
    styled = ValueError("\x1b[1mComputed output size would be zero or negative. Received: `pool_size=[5 5]`.\x1b[0m")
    assert _reason(styled) == "Computed output size would be zero or negative. Received: `pool_size=[5 5]`."


def test_a_keras_rejection_reads_as_plain_text():
    # Keras's pooling layer styles this message with ANSI escapes.
    too_small = {**spec({"type": "aux_classifier", "units": 3}, *HEAD, input_shape=(4, 4, 8)), "aux_loss_weight": 0.3}
    with pytest.raises(SpecError) as raised:
        builders.build(too_small)
    assert "Computed output size" in str(raised.value) and "\x1b" not in str(raised.value)


@pytest.mark.parametrize("without, message", [
    (["lrnn"], "model.without[0]: unknown block type 'lrnn'; registered: "),
    ("lrn", "model.without: expected a list of block types like [lrn], got 'lrn'"),
])
def test_without_names_registered_block_types(without, message):
    with pytest.raises(SpecError) as raised:
        builders.build({**spec({"type": "conv", "filters": 4, "kernel_size": 3}, *HEAD), "without": without})
    assert str(raised.value).startswith(message)
