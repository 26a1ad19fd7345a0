"""Receptive field and jump per row, by hand from r_out = r_in + (k - 1) * j_in, j_out = j_in * s.

Published values: the receptive-field table of TensorFlow's receptive_field library, which
Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural Networks" (Distill 2019)
tabulates from the TF-Slim models (tensorflow/contrib/receptive_field/RECEPTIVE_FIELD_TABLE.md):
alexnet_v2 conv5 163, pool5 195; vgg_16 pool5 212; resnet_v1_50 block1..4 35, 99, 291, 483.
"""

import keras
import pytest
from helpers import row, zoo_report

import builders
from builders.pooling import PaddedAveragePooling2D
from builders.report import report


def fields(report_, *names):
    return [(row(report_, name).receptive_field, row(report_, name).jump) for name in names]


def conv_rows(*kernels_and_strides):
    return [{"type": "conv", "filters": 2, "kernel_size": kernel, "strides": stride, "padding": "same",
             "name": f"c{number}"} for number, (kernel, stride) in enumerate(kernels_and_strides, start=1)]


def probe(rows, size=32):
    spec = {"name": "probe", "input_shape": [size, size, 2],
            "blocks": [*rows, {"type": "global_avgpool"}, {"type": "dense", "units": 2}]}
    return report(builders.build(spec))


def test_stacked_3x3_convolutions_see_what_one_larger_kernel_sees():
    """VGG's lesson (Simonyan & Zisserman, Section 2.3): two 3x3 see 5x5, three see 7x7, with fewer weights."""
    stacked = probe(conv_rows((3, 1), (3, 1), (3, 1)))
    assert fields(stacked, "c1", "c2", "c3") == [(3, 1), (5, 1), (7, 1)]
    keras.backend.clear_session()
    single = probe(conv_rows((7, 1)))
    assert fields(single, "c1") == [(7, 1)]
    # 2 channels in and out: three 3x3 layers have 3 * (9 * 2 * 2 + 2) weights, one 7x7 has 49 * 2 * 2 + 2.
    assert sum(layer.params for layer in stacked.layers[:3]) == 3 * (9 * 4 + 2) < single.layers[0].params == 49 * 4 + 2


def test_a_stride_multiplies_the_jump_and_widens_what_follows():
    # 3x3/2 -> r 3, j 2; then a 3x3/1 steps 2 input pixels per kernel pixel: 3 + 2 * 2 = 7.
    assert fields(probe(conv_rows((3, 2), (3, 1))), "c1", "c2") == [(3, 2), (7, 2)]


def test_explicit_padding_moves_the_field_not_its_size():
    """A pad layer (zeros, a max pool's -inf) keeps r and j; a padded average pool is one window."""
    rows = [{"type": "conv", "filters": 2, "kernel_size": 7, "strides": 2, "padding": 3, "name": "c1"},
            {"type": "maxpool", "pool_size": 3, "strides": 2, "padding": 1, "name": "p1"},
            # 8 -> ceil((8 - 3) / 2) + 1 = 4, the last window one cell past the map: PaddedAveragePooling2D.
            {"type": "avgpool", "pool_size": 3, "strides": 2, "ceil_mode": True, "count_padding": False, "name": "p2"}]
    padded = probe(rows)
    assert fields(padded, "c1", "p1", "p2") == [(7, 2), (11, 4), (19, 8)]
    assert [row(padded, name).output_shape[0] for name in ("c1", "p1", "p2")] == [16, 8, 4]
    built = builders.build({"name": "probe", "input_shape": [32, 32, 2],
                            "blocks": [*rows, {"type": "global_avgpool"}, {"type": "dense", "units": 2}]})
    assert isinstance(built.model.get_layer("p2"), PaddedAveragePooling2D)


def test_rows_without_a_spatial_map_are_global():
    layers = probe(conv_rows((3, 1))).layers
    assert [(layer.type, layer.receptive_field, layer.jump) for layer in layers] == [
        ("conv", 3, 1), ("global_avgpool", None, None), ("dense", None, None)]


def test_lenet():
    report_ = zoo_report("lenet", "digits")
    # c1 5x5: 5; s2 2x2/2: 5 + 1 = 6, jump 2; c3 5x5: 6 + 4 * 2 = 14; s4 2x2/2: 14 + 2 = 16, jump 4.
    assert fields(report_, "c1", "s2", "c3", "s4") == [(5, 1), (6, 2), (14, 2), (16, 4)]
    # The 5x5 map of s4 together: 16 + 4 * 4 = 32, the whole 32x32 input; the dense rows see it all.
    assert fields(report_, "flatten", "c5", "output") == [(None, None)] * 3


def test_alexnet():
    report_ = zoo_report("alexnet", "imagenet")
    # conv1 11x11/4: 11, j 4; pool1 3x3/2: 11 + 2 * 4 = 19, j 8; conv2 5x5 (pad 2): 19 + 4 * 8 = 51;
    # pool2: 51 + 2 * 8 = 67, j 16; conv3..5 3x3: 99, 131, 163; pool5: 163 + 2 * 16 = 195, j 32.
    # LRN is pointwise across channels: it keeps its input's field.
    assert fields(report_, "conv1", "norm1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5") == [
        (11, 4), (11, 4), (19, 8), (51, 8), (67, 16), (99, 16), (131, 16), (163, 16), (195, 32)]
    # Published: alexnet_v2 conv5 163, pool5 195 (padding moves the field, never its size).


def test_vgg16():
    report_ = zoo_report("vgg16", "imagenet")
    assert fields(report_, "conv1_block1", "conv1_block2", "pool1", "conv2_block2", "pool2") == [
        (3, 1), (5, 1), (6, 2), (14, 2), (16, 4)]
    # Stage 5 at jump 16: 100 + 2 * 16 per 3x3; pool5 2x2/2 adds 16 more.
    assert fields(report_, "pool4", "conv5_block1", "conv5_block2", "conv5_block3", "pool5") == [
        (100, 16), (132, 16), (164, 16), (196, 16), (212, 32)]  # published: vgg_16 pool5 212


def test_resnet50_v1_5():
    report_ = zoo_report("resnet50", "imagenet")
    # A bottleneck adds only its 3x3: 2 * j_in; conv3_block1's 3x3 carries the stride (v1.5), so it
    # still widens by 2 * 4 before the jump doubles. The shortcut (1x1) never widens it.
    assert fields(report_, "conv1", "pool1", "conv2_block1", "conv2_block3", "conv3_block1", "conv3_block4") == [
        (7, 2), (11, 4), (19, 4), (35, 4), (43, 8), (91, 8)]
    # 11 + 4 * 8 + 4 * 16 + 6 * 32 + 2 * 64 (3x3 convolutions at each input jump): 427.
    assert fields(report_, "conv4_block6", "conv5_block1", "conv5_block3", "avgpool") == [
        (267, 16), (299, 32), (427, 32), (None, None)]


def test_resnet50_with_the_papers_strides_gives_the_published_483():
    """The published 483 is ResNet v1: the paper puts a stage's stride on the first 1x1, TF-Slim's
    resnet_v1_50 on the last unit of the stage before; both run one more 3x3 at jump 32 than v1.5
    (torchvision's layout, which `bottleneck` follows), and both give 483. Only the 1x1-3x3-1x1
    path matters (the shortcut does not widen the field), so it is written as conv rows."""
    rows = [{"type": "conv", "filters": 2, "kernel_size": 7, "strides": 2, "padding": "same", "name": "conv1"},
            {"type": "maxpool", "pool_size": 3, "strides": 2, "padding": "same", "name": "pool1"}]
    for stage, (blocks, stride) in enumerate([(3, 1), (4, 2), (6, 2), (3, 2)], start=2):
        for block in range(1, blocks + 1):
            first = {"strides": stride if block == 1 else 1}
            rows += [{"type": "conv", "filters": 2, "kernel_size": 1, "name": f"conv{stage}_{block}a", **first},
                     {"type": "conv", "filters": 2, "kernel_size": 3, "padding": "same",
                      "name": f"conv{stage}_{block}b"},
                     {"type": "conv", "filters": 2, "kernel_size": 1, "name": f"conv{stage}_{block}c"}]
    report_ = probe(rows, size=224)
    # Each stage's end: the published resnet_v1_50 block1..4 fields (their jumps differ: TF-Slim strides later).
    assert [row(report_, f"conv{stage}_{blocks}c").receptive_field
            for stage, blocks in ((2, 3), (3, 4), (4, 6), (5, 3))] == [35, 99, 291, 483]


def test_inception_sees_what_its_5x5_branch_sees():
    report_ = zoo_report("googlenet", "imagenet")
    # pool2 27 at jump 8; 3a: the 5x5 branch (1x1 reduce, 5x5) 27 + 4 * 8 = 59, where the pool
    # branch (3x3 pool, 1x1) gives 27 + 2 * 8 = 43.
    assert fields(report_, "conv1", "pool1", "conv2", "pool2", "inception_3a", "inception_3b", "pool3") == [
        (7, 2), (11, 4), (19, 4), (27, 8), (59, 8), (91, 8), (107, 16)]
    rows = ("inception_4a", "aux1", "inception_4b", "inception_4e", "pool4", "inception_5b", "pool5")
    assert fields(report_, *rows) == [
        (171, 16), (None, None), (235, 16), (427, 16), (459, 32), (715, 32), (None, None)]


def test_the_naive_module_sees_what_the_real_one_sees():
    real, naive = zoo_report("googlenet", "imagenet"), zoo_report("googlenet_naive", "imagenet")
    assert [(layer.receptive_field, layer.jump) for layer in naive.layers] == [
        (layer.receptive_field, layer.jump) for layer in real.layers]


@pytest.mark.parametrize("depth", [18, 34])
def test_the_shortcut_does_not_widen_the_field(depth):
    residual, plain = zoo_report(f"resnet{depth}", "imagenet"), zoo_report(f"plain{depth}", "imagenet")
    assert [(layer.receptive_field, layer.jump) for layer in plain.layers] == [
        (layer.receptive_field, layer.jump) for layer in residual.layers]
    # Two 3x3 per block: conv2_block1 adds 2 * 2 * 4 to pool1's 11. Every 3x3 adds 2 * its input's jump,
    # and a stage's first 3x3 (it carries the stride) still runs at the old jump. 3x3s at jumps
    # 4, 8, 16, 32: ResNet-18 5, 4, 4, 3: 11 + 5 * 8 + 4 * 16 + 4 * 32 + 3 * 64 = 435;
    # ResNet-34 7, 8, 12, 5: 11 + 7 * 8 + 8 * 16 + 12 * 32 + 5 * 64 = 899.
    last, field = {18: ("conv5_block2", 435), 34: ("conv5_block3", 899)}[depth]
    assert fields(plain, "conv2_block1", last) == [(27, 4), (field, 32)]
