"""Every file in conf/model/ is tested the moment it exists; the seed networks against their papers."""

import math

import pytest

from conftest import MODEL_NAMES, row, zoo_report

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


RESNET_STAGES = {"resnet18": 1, "resnet34": 1, "resnet50": 4, "resnet101": 4, "resnet152": 4}


@pytest.mark.parametrize("model", sorted(RESNET_STAGES))
def test_resnet_stage_outputs_follow_table_1(model):
    report = zoo_report(model, "imagenet")
    expansion = RESNET_STAGES[model]
    for stage, (size, width) in enumerate([(56, 64), (28, 128), (14, 256), (7, 512)], start=2):
        last = [layer for layer in report.layers if layer.name.startswith(f"conv{stage}_")][-1]
        assert last.output_shape == [size, size, width * expansion], (model, last.name)
    assert row(report, "pool1").output_shape == [56, 56, 64]


def test_repeat_gives_one_report_row_per_application():
    report = zoo_report("resnet152", "imagenet")
    stage4 = [layer.name for layer in report.layers if layer.name.startswith("conv4_")]
    assert stage4 == [f"conv4_{number}" for number in range(1, 37)]
    assert row(report, "conv4_1").input_shape[0] == 28 and row(report, "conv4_2").input_shape[0] == 14


def test_totals_are_the_sum_of_the_rows():
    for model in ("alexnet", "googlenet", "resnet50"):
        report = zoo_report(model, "imagenet")
        assert sum(layer.params for layer in report.layers) == report.total_params
        assert math.isclose(sum(layer.macs for layer in report.layers), report.macs)
