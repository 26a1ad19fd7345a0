"""Every file in conf/model/ is tested the moment it exists; the seed networks against their papers."""

import math
import re

import pytest

from helpers import MODEL_NAMES, REPO, compose, row, zoo_report

# Parameters with a 1000-way head, where a published implementation has the same architecture.
# torchvision counts parameters() (trainable), so these compare with trainable_params.
PUBLISHED_PARAMS = {
    "alexnet_grouped": 60_965_224,  # Caffe's bvlc_alexnet (the paper's two-tower connectivity)
    "vgg11": 132_863_336,  # torchvision vgg11
    "vgg11_lrn": 132_863_336,  # LRN has no parameters (Simonyan & Zisserman, Table 2: 133M)
    "vgg13": 133_047_848,  # torchvision vgg13
    "vgg16": 138_357_544,  # torchvision vgg16, Keras Applications VGG16
    "vgg19": 143_667_240,  # torchvision vgg19, Keras Applications VGG19
    "resnet18": 11_689_512,  # torchvision resnet18
    "resnet34": 21_797_672,  # torchvision resnet34
    "resnet50": 25_557_032,  # torchvision resnet50
    "resnet101": 44_549_160,  # torchvision resnet101
    "resnet152": 60_192_808,  # torchvision resnet152
}

# Multiply-accumulates per 224x224 image, as torchvision's model docs list them ("GFLOPS").
PUBLISHED_GMACS = {
    "vgg11": 7.61, "vgg13": 11.31, "vgg16": 15.47, "vgg19": 19.63,
    "resnet18": 1.81, "resnet34": 3.66, "resnet50": 4.09, "resnet101": 7.80, "resnet152": 11.51,
}


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_every_model_builds_with_a_1000_and_a_10_way_head(model):
    wide, narrow = zoo_report(model, "imagenet"), zoo_report(model, "digits")
    heads = [layer for layer in wide.layers if layer.output_shape == [1000]]
    assert heads and heads[-1] is wide.layers[-1]
    assert narrow.layers[-1].output_shape == [10]
    # Only the classifiers differ: each loses (features + 1) * 990 parameters.
    features = [layer.input_shape[-1] for layer in heads if layer.type == "dense"]
    aux = [layer for layer in wide.layers if layer.type == "aux_classifier"]
    lost = sum((f + 1) * 990 for f in features) + len(aux) * (1024 + 1) * 990
    assert wide.total_params - narrow.total_params == lost


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_size_rule_in_the_report_agrees_with_the_built_model(model):
    for layer in zoo_report(model, "imagenet").layers:
        if layer.size_rule:
            assert layer.size_rule.endswith(f"= {layer.output_shape[0]}"), (model, layer)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_receptive_field_follows_the_maps(model):
    """Spatial rows carry an int field and jump, vector rows none (global); along the main path both
    only grow, and the jump is the stride between output units, so it fits the map in the input."""
    report = zoo_report(model, "imagenet")
    height = report.input_shape[0]
    main_path = [layer for layer in report.layers if layer.type != "aux_classifier"]
    previous = (1, 1)
    for layer in main_path:
        if len(layer.output_shape) == 1:
            assert (layer.receptive_field, layer.jump) == (None, None), (model, layer.name)
            continue
        assert isinstance(layer.receptive_field, int) and isinstance(layer.jump, int), (model, layer.name)
        assert layer.receptive_field >= previous[0] and layer.jump >= previous[1], (model, layer.name)
        assert layer.output_shape[0] <= math.ceil(height / layer.jump), (model, layer.name)
        previous = (layer.receptive_field, layer.jump)


@pytest.mark.parametrize("model", sorted(PUBLISHED_PARAMS))
def test_parameter_counts_match_published_implementations(model):
    assert zoo_report(model, "imagenet").trainable_params == PUBLISHED_PARAMS[model]


@pytest.mark.parametrize("model", sorted(PUBLISHED_GMACS))
def test_macs_match_published_figures(model):
    assert zoo_report(model, "imagenet").macs / 1e9 == pytest.approx(PUBLISHED_GMACS[model], abs=0.01)


def shapes(report):
    return ["x".join(map(str, layer.output_shape)) for layer in report.layers]


def test_lenet_feature_maps_are_the_seed_articles():
    report = zoo_report("lenet", "digits")
    assert shapes(report) == ["28x28x6", "14x14x6", "10x10x16", "5x5x16", "400", "120", "84", "10"]
    assert report.total_params == 61_706  # LeNet-5 with a dense output layer


def test_alexnet_feature_maps_are_the_seed_articles():
    report = zoo_report("alexnet", "imagenet")
    maps = {layer.name: "x".join(map(str, layer.output_shape)) for layer in report.layers}
    assert [maps[name] for name in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5")] == [
        "55x55x96", "27x27x96", "27x27x256", "13x13x256", "13x13x384", "13x13x384", "13x13x256", "6x6x256"]
    assert [maps[name] for name in ("flatten", "fc6", "fc7", "fc8")] == ["9216", "4096", "4096", "1000"]
    # Single tower: conv1..fc8 with full connectivity (the grouped file has the paper's 60,965,224).
    assert report.trainable_params == 62_378_344


def test_vgg16_feature_maps_are_the_seed_articles():
    report = zoo_report("vgg16", "imagenet")
    expected = (["224x224x64"] * 2 + ["112x112x64"] + ["112x112x128"] * 2 + ["56x56x128"]
                + ["56x56x256"] * 3 + ["28x28x256"] + ["28x28x512"] * 3 + ["14x14x512"]
                + ["14x14x512"] * 3 + ["7x7x512", "25088", "4096", "4096", "4096", "4096", "1000"])
    assert shapes(report) == expected
    assert row(report, "fc6").params == 25088 * 4096 + 4096  # the seed: "102,760,448, over a hundred million"


def test_zfnet_feature_maps_follow_figure_3():
    report = zoo_report("zfnet", "imagenet")
    sizes = [row(report, name).output_shape[0] for name in
             ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5")]
    assert sizes == [110, 55, 26, 13, 13, 13, 13, 6]


# GoogLeNet, Table 1: output size, and for the inception rows the "ops" column (millions of
# multiply-accumulates). Its "params" column is not checked: it strays up to 7% from what the
# table's own filter columns give (4c: 463K printed, 497.5K weights).
GOOGLENET_TABLE_1 = {
    "conv1": ("112x112x64", None), "pool1": ("56x56x64", None),
    "conv2": ("56x56x192", None), "pool2": ("28x28x192", None),
    "inception_3a": ("28x28x256", 128), "inception_3b": ("28x28x480", 304),
    "pool3": ("14x14x480", None),
    "inception_4a": ("14x14x512", 73), "inception_4b": ("14x14x512", 88),
    "inception_4c": ("14x14x512", 100), "inception_4d": ("14x14x528", 119),
    "inception_4e": ("14x14x832", 170), "pool4": ("7x7x832", None),
    # 5a's printed 54M does not follow from its own columns (they give 51M): not checked.
    "inception_5a": ("7x7x832", None), "inception_5b": ("7x7x1024", 71),
    "pool5": ("1024", None), "classifier": ("1000", None),
}


@pytest.mark.parametrize("name", sorted(GOOGLENET_TABLE_1))
def test_googlenet_matches_table_1(name):
    shape, mega_ops = GOOGLENET_TABLE_1[name]
    layer = row(zoo_report("googlenet", "imagenet"), name)
    assert "x".join(map(str, layer.output_shape)) == shape
    if mega_ops:
        assert layer.macs / 1e6 == pytest.approx(mega_ops, abs=1)


def test_googlenet_auxiliary_classifiers_follow_section_5():
    report = zoo_report("googlenet", "imagenet")
    for name, tap in (("aux1", "14x14x512"), ("aux2", "14x14x528")):
        aux = row(report, name)
        assert "x".join(map(str, aux.input_shape)) == tap and aux.output_shape == [1000]
        channels = aux.input_shape[-1]
        # 1x1 conv 128 on the 4x4 pooled map, fc 1024 on its 2048 values, classifier.
        assert aux.params == (channels * 128 + 128) + (2048 * 1024 + 1024) + (1024 * 1000 + 1000)
    # "1.5 billion multiply-adds at inference time" (Section 5), main path only.
    main_path = report.macs - sum(row(report, name).macs for name in ("aux1", "aux2"))
    assert main_path / 1e9 == pytest.approx(1.5, abs=0.1)


def test_googlenet_without_auxiliary_heads():
    with_aux = zoo_report("googlenet", "imagenet")
    without = zoo_report("googlenet", "imagenet", "model.aux_loss_weight=0")
    assert [layer.name for layer in without.layers] == [
        layer.name for layer in with_aux.layers if layer.type != "aux_classifier"]
    aux_params = sum(layer.params for layer in with_aux.layers if layer.type == "aux_classifier")
    assert with_aux.total_params - without.total_params == aux_params
    # Table 1's columns with biases: 6,998,552 (the table's own params column sums to about 6.8M).
    assert without.total_params == 6_998_552


RESNET_STAGES = {"resnet18": 1, "resnet34": 1, "resnet50": 4, "resnet101": 4, "resnet152": 4,
                 "plain18": 1, "plain34": 1}


@pytest.mark.parametrize("model", sorted(RESNET_STAGES))
def test_resnet_stage_outputs_follow_table_1(model):
    report = zoo_report(model, "imagenet")
    expansion = RESNET_STAGES[model]
    for stage, (size, width) in enumerate([(56, 64), (28, 128), (14, 256), (7, 512)], start=2):
        blocks = [layer for layer in report.layers if layer.name.startswith(f"conv{stage}_")]
        assert blocks and all(layer.output_shape == [size, size, width * expansion] for layer in blocks), model
    assert row(report, "conv1").output_shape == [112, 112, 64]
    assert row(report, "pool1").output_shape == [56, 56, 64]


# Parameters and MACs (1000-way head, auxiliary heads included) of the models whose padding follows
# torchvision's or Caffe's: explicit pads and ceil-mode pools changed no size at 224, so
# no count. Pinned exactly, as before the padding changed.
EXACT_COUNTS = {
    "resnet18": (11_699_112, 1_814_073_344), "resnet34": (21_814_696, 3_663_761_408),
    "resnet50": (25_610_152, 4_089_184_256), "resnet101": (44_654_504, 7_801_405_440),
    "resnet152": (60_344_232, 11_513_626_624),
    "plain18": (11_523_496, 1_794_805_760), "plain34": (21_639_080, 3_644_493_824),
    "googlenet": (13_378_280, 1_591_044_096), "googlenet_naive": (104_274_376, 12_582_331_520),
    "zfnet": (62_357_608, 1_168_032_896),
}


@pytest.mark.parametrize("model", sorted(EXACT_COUNTS))
def test_parameters_and_macs_are_pinned(model):
    report = zoo_report(model, "imagenet")
    assert (report.total_params, report.macs) == EXACT_COUNTS[model]


def test_small_inputs_keep_resnet_and_change_googlenets_auxiliary_heads_only():
    """At 64 the maps of ResNet halve as with 'same' (pad 3 and pad 1 give ceil(in / 2) too). At 96
    GoogLeNet's 4a and 4d are 6x6: the aux heads' 5x5/3 pools in ceil mode add a last, partial
    window (2x2, not floor mode's 1x1), so their fc layers see 512 values, not 128."""
    resnet = zoo_report("resnet18", "imagenet", "model.input_shape=[64,64,3]")
    assert (resnet.total_params, resnet.macs) == (11_699_112, 148_557_824)
    googlenet = zoo_report("googlenet", "imagenet", "model.input_shape=[96,96,3]")
    assert (googlenet.total_params, googlenet.macs) == (10_232_552, 295_159_808)
    assert row(googlenet, "aux1").params == (512 * 128 + 128) + (2 * 2 * 128 * 1024 + 1024) + (1024 * 1000 + 1000)
    assert [row(googlenet, name).output_shape[0] for name in ("pool1", "pool2", "pool3", "pool4")] == [24, 12, 6, 3]


def test_repeat_gives_one_report_row_per_application():
    report = zoo_report("resnet152", "imagenet")
    stage4 = [layer.name for layer in report.layers if layer.name.startswith("conv4_")]
    assert stage4 == [f"conv4_block{number}" for number in range(1, 37)]
    assert row(report, "conv4_block1").input_shape[0] == 28 and row(report, "conv4_block2").input_shape[0] == 14


def test_totals_are_the_sum_of_the_rows():
    for model in ("alexnet", "googlenet", "resnet50"):
        report = zoo_report(model, "imagenet")
        assert sum(layer.params for layer in report.layers) == report.total_params
        assert math.isclose(sum(layer.macs for layer in report.layers), report.macs)


def test_naive_inception_3a_costs_what_the_1x1_reductions_save():
    """Section 4 and Table 1: the same 64/128/32 outputs, with and without the 1x1 reductions."""
    naive, reduced = row(zoo_report("googlenet_naive", "imagenet"), "inception_3a"), row(
        zoo_report("googlenet", "imagenet"), "inception_3a")
    assert naive.input_shape == reduced.input_shape == [28, 28, 192]
    # Naive: 1x1 64, 3x3 128, 5x5 32 straight on the 192 channels (biases: no batch norm); the
    # pool branch has no weights and passes the 192 channels on.
    assert naive.params == (192 * 64 + 64) + (9 * 192 * 128 + 128) + (25 * 192 * 32 + 32) == 387_296
    assert naive.macs == 28 * 28 * (192 * 64 + 9 * 192 * 128 + 25 * 192 * 32) == 303_464_448
    assert naive.output_shape == [28, 28, 64 + 128 + 32 + 192]
    # Reduced: 96 before the 3x3, 16 before the 5x5, pool projection 32: Table 1's 128M ops.
    assert reduced.params == ((192 * 64 + 64) + (192 * 96 + 96) + (9 * 96 * 128 + 128) + (192 * 16 + 16)
                              + (25 * 16 * 32 + 32) + (192 * 32 + 32)) == 163_696
    assert reduced.macs == 28 * 28 * (192 * 64 + 192 * 96 + 9 * 96 * 128 + 192 * 16 + 25 * 16 * 32
                                      + 192 * 32) == 128_049_152
    assert reduced.output_shape == [28, 28, 256]


def test_naive_googlenet_grows_its_channels_stage_by_stage():
    naive, real = zoo_report("googlenet_naive", "imagenet"), zoo_report("googlenet", "imagenet")
    modules = [layer for layer in naive.layers if layer.type == "inception_naive"]
    assert len(modules) == 9
    spec = {block["name"]: block for block in compose("model=googlenet_naive").model.blocks
            if block.type == "inception_naive"}
    for module in modules:
        args = spec[module.name]
        assert module.output_shape[-1] == module.input_shape[-1] + args.b1x1 + args.b3x3 + args.b5x5
    assert row(naive, "inception_5b").output_shape == [7, 7, 4944]  # googlenet's: 1024
    # With a 1000-way head and both auxiliary heads: 7.8 times the parameters, 7.9 times the MACs.
    assert (naive.total_params, naive.macs) == (104_274_376, 12_582_331_520)
    assert (real.total_params, real.macs) == (13_378_280, 1_591_044_096)


@pytest.mark.parametrize("depth", [18, 34])
def test_plain_nets_lack_only_the_projection_shortcuts(depth):
    """He et al. 2015, Section 4.1: plain-18/34 are ResNet-18/34 without shortcuts."""
    plain, residual = zoo_report(f"plain{depth}", "imagenet"), zoo_report(f"resnet{depth}", "imagenet")
    assert [(layer.name, layer.output_shape) for layer in plain.layers] == [
        (layer.name, layer.output_shape) for layer in residual.layers]
    # The shape changes at conv3_block1, conv4_block1 and conv5_block1, where ResNet's projection is a bias-free
    # 1x1 convolution and a batch norm (gamma, beta trainable; moving mean and variance not).
    projections = {"conv3_block1": (64, 128), "conv4_block1": (128, 256), "conv5_block1": (256, 512)}
    differences = {mine.name: theirs.params - mine.params
                   for mine, theirs in zip(plain.layers, residual.layers) if theirs.params != mine.params}
    assert differences == {name: c_in * c_out + 4 * c_out for name, (c_in, c_out) in projections.items()}
    assert residual.total_params - plain.total_params == 175_616
    assert residual.trainable_params - plain.trainable_params == sum(
        c_in * c_out + 2 * c_out for c_in, c_out in projections.values()) == 173_824


def zoo_table_rows():
    """docs/zoo.md's table of the zoo: (model, params text, GMACs text, data) per model its rows name."""
    table = (REPO / "docs" / "zoo.md").read_text().split("| model | paper |")[1].split("\n\n")[0]
    for line in table.splitlines()[2:]:
        names, _, _, params, gmacs, _ = [cell.strip() for cell in line.strip("|").split("|")]
        models = re.findall(r"`(\w+)`", names)
        data = "digits" if "(10-way)" in params else "imagenet"
        params, gmacs = params.split(" (")[0].split(", "), gmacs.split(" (")[0].split(", ")
        for index, model in enumerate(models):
            yield model, params[min(index, len(params) - 1)], gmacs[min(index, len(gmacs) - 1)], data


@pytest.mark.parametrize("model, params, gmacs, data", list(zoo_table_rows()))
def test_the_docs_zoo_table_is_what_the_zoo_builds(model, params, gmacs, data):
    report = zoo_report(model, data)
    if params.endswith(" M"):  # millions to two places
        assert f"{report.trainable_params / 1e6:.2f} M" == params
    else:
        assert f"{report.trainable_params:,}" == params
    if gmacs:
        places = len(gmacs.split(".")[1])
        assert f"{report.macs / 1e9:.{places}f}" == gmacs


def test_the_docs_zoo_table_names_every_model():
    assert {model for model, *_ in zoo_table_rows()} == set(MODEL_NAMES)
