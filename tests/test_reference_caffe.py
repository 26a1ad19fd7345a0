"""tests/reference_caffe.py checked where it can be on its own: its tops' shapes against the prototxts' and
the papers' sizes, its parameter counts against BVLC's, and Caffe's LRN, ceil-mode pooling, grouped
convolution and (C, H, W) InnerProduct against brute-force numpy loops written from Caffe's layer sources."""

import numpy as np
import pytest

from reference_caffe import (ALEXNET_SHAPES, GOOGLENET_SHAPES, alexnet_forward, alexnet_shapes,
                             alexnet_tops, convolution, googlenet_forward, googlenet_shapes, googlenet_tops,
                             inner_product, lrn, pool, pooled_size, random_blobs)

# models/bvlc_alexnet/deploy.prototxt at 227x227, H x W x C of every top (Krizhevsky et al. 2012, Figure 2:
# 55x55x96, 27x27x256, 13x13x384, 13x13x384, 13x13x256, 4096, 4096, 1000).
ALEXNET_TOPS = {
    "conv1": (55, 55, 96), "norm1": (55, 55, 96), "pool1": (27, 27, 96),
    "conv2": (27, 27, 256), "norm2": (27, 27, 256), "pool2": (13, 13, 256),
    "conv3": (13, 13, 384), "conv4": (13, 13, 384), "conv5": (13, 13, 256), "pool5": (6, 6, 256),
    "fc6": (4096,), "fc7": (4096,), "fc8": (1000,),
}
# models/bvlc_googlenet/deploy.prototxt at 224x224 (Szegedy et al. 2014, Table 1's output sizes; Section 5:
# the aux heads' 5x5/3 average pool gives 4x4x512 on (4a) and 4x4x528 on (4d)).
GOOGLENET_TOPS = {
    "conv1/7x7_s2": (112, 112, 64), "pool1/3x3_s2": (56, 56, 64), "pool1/norm1": (56, 56, 64),
    "conv2/3x3_reduce": (56, 56, 64), "conv2/3x3": (56, 56, 192), "conv2/norm2": (56, 56, 192),
    "pool2/3x3_s2": (28, 28, 192),
    "inception_3a/output": (28, 28, 256), "inception_3b/output": (28, 28, 480), "pool3/3x3_s2": (14, 14, 480),
    "inception_4a/output": (14, 14, 512), "inception_4b/output": (14, 14, 512),
    "inception_4c/output": (14, 14, 512), "inception_4d/output": (14, 14, 528),
    "inception_4e/output": (14, 14, 832), "pool4/3x3_s2": (7, 7, 832),
    "inception_5a/output": (7, 7, 832), "inception_5b/output": (7, 7, 1024), "pool5/7x7_s1": (1, 1, 1024),
    "loss3/classifier": (1000,),
    "loss1/ave_pool": (4, 4, 512), "loss1/conv": (4, 4, 128), "loss1/fc": (1024,),
    "loss1/classifier": (1000,),
    "loss2/ave_pool": (4, 4, 528), "loss2/conv": (4, 4, 128), "loss2/fc": (1024,),
    "loss2/classifier": (1000,),
    # One module's branches: 1x1, 3x3, 5x5 and pool_proj, concatenated in that order, make its output.
    "inception_3a/1x1": (28, 28, 64), "inception_3a/3x3_reduce": (28, 28, 96),
    "inception_3a/3x3": (28, 28, 128), "inception_3a/5x5_reduce": (28, 28, 16),
    "inception_3a/5x5": (28, 28, 32), "inception_3a/pool": (28, 28, 192),
    "inception_3a/pool_proj": (28, 28, 32),
}


def images(size: int, count: int = 2) -> np.ndarray:
    """Caffe-scale inputs: BGR 0-255 less the mean, so the LRNs' alpha / 5 * sum of squares is near 1."""
    return np.random.default_rng(3).uniform(-128, 128, (count, size, size, 3)).astype(np.float32)


# Every LRN of both prototxts: local_size 5, alpha 0.0001 (lrn_layer.cpp divides it by local_size), beta 0.75,
# k caffe.proto's default 1, as lrn_loop's (size, alpha, beta, k).
CAFFE_LRN = (5, 1e-4 / 5, 0.75, 1.0)
# The parameterless layers, top: (bottom, layer) as the prototxts wire them; a pool as (method, kernel,
# stride, pad). AlexNet normalises before it pools, GoogLeNet's pool1 pools first.
ALEXNET_WIRING = {
    "norm1": ("conv1", "LRN"), "pool1": ("norm1", ("MAX", 3, 2, 0)),
    "norm2": ("conv2", "LRN"), "pool2": ("norm2", ("MAX", 3, 2, 0)), "pool5": ("conv5", ("MAX", 3, 2, 0)),
}
GOOGLENET_WIRING = {
    "pool1/3x3_s2": ("conv1/7x7_s2", ("MAX", 3, 2, 0)), "pool1/norm1": ("pool1/3x3_s2", "LRN"),
    "conv2/norm2": ("conv2/3x3", "LRN"), "pool2/3x3_s2": ("conv2/norm2", ("MAX", 3, 2, 0)),
    "inception_3a/pool": ("pool2/3x3_s2", ("MAX", 3, 1, 1)),
    "pool3/3x3_s2": ("inception_3b/output", ("MAX", 3, 2, 0)),
    "loss1/ave_pool": ("inception_4a/output", ("AVE", 5, 3, 0)),
    "loss2/ave_pool": ("inception_4d/output", ("AVE", 5, 3, 0)),
    "pool4/3x3_s2": ("inception_4e/output", ("MAX", 3, 2, 0)),
    "pool5/7x7_s1": ("inception_5b/output", ("AVE", 7, 1, 0)),
}


@pytest.fixture(scope="module")
def alexnet() -> dict[str, np.ndarray]:
    tops = alexnet_tops(random_blobs(ALEXNET_SHAPES), images(227))
    return {name: top.numpy() for name, top in tops.items()}


@pytest.fixture(scope="module")
def googlenet() -> dict[str, np.ndarray]:
    tops = googlenet_tops(random_blobs(GOOGLENET_SHAPES), images(224))
    return {name: top.numpy() for name, top in tops.items()}


def top_shapes(tops) -> dict:
    return {name: top.shape[1:] for name, top in tops.items()}


def test_alexnet_tops_have_the_prototxt_shapes(alexnet):
    assert top_shapes(alexnet) == ALEXNET_TOPS
    assert all(alexnet[name].min() >= 0 for name in ALEXNET_TOPS if name != "fc8")  # every ReLU there
    assert np.isfinite(alexnet["fc8"]).all() and not np.allclose(alexnet["fc8"][0], alexnet["fc8"][1])


def test_googlenet_tops_have_the_prototxt_shapes(googlenet):
    shapes = top_shapes(googlenet)
    assert {name: shapes.get(name) for name in GOOGLENET_TOPS} == GOOGLENET_TOPS
    assert all(top.min() >= 0 for name, top in googlenet.items() if not name.endswith("/classifier"))
    branches = ("1x1", "3x3", "5x5", "pool_proj")
    for module in ("inception_3a", "inception_4d", "inception_5b"):
        expected = np.concatenate([googlenet[f"{module}/{branch}"] for branch in branches], axis=-1)
        np.testing.assert_array_equal(googlenet[f"{module}/output"], expected)


@pytest.mark.parametrize("net, wiring", [("alexnet", ALEXNET_WIRING), ("googlenet", GOOGLENET_WIRING)])
def test_lrns_and_pools_sit_where_the_prototxts_put_them(request, net, wiring):
    tops = request.getfixturevalue(net)
    for name, (bottom, layer) in wiring.items():
        if layer == "LRN":
            expected = lrn_loop(tops[bottom], *CAFFE_LRN)
        else:
            expected = pool_loop(tops[bottom], *layer, pooled=tops[name].shape[1])
        np.testing.assert_allclose(tops[name], expected, rtol=1e-5, err_msg=name)


def test_parameter_counts_are_bvlcs():
    def count(shapes):
        return sum(int(np.prod(shape)) for shape in shapes.values())

    assert count(ALEXNET_SHAPES) == 60_965_224  # bvlc_alexnet, 1000 classes
    aux = ("loss1/", "loss2/")
    deploy = {key: shape for key, shape in GOOGLENET_SHAPES.items() if not key.startswith(aux)}
    assert count(deploy) == 6_998_552  # bvlc_googlenet's deploy.prototxt
    # The caffemodel keeps the aux heads too: 13.4M float32, the 53.5 MB of bvlc_googlenet.caffemodel.
    assert count(GOOGLENET_SHAPES) == 13_378_280


def test_blobs_have_caffes_names_and_layouts():
    layers = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
    assert list(ALEXNET_SHAPES) == [f"{layer}.{blob}" for layer in layers for blob in ("weight", "bias")]
    # group: 2 halves the input channels of conv2, conv4 and conv5's filters; fc6 takes pool5's 256x6x6.
    assert [ALEXNET_SHAPES[f"{layer}.weight"] for layer in layers[:6]] == [
        (96, 3, 11, 11), (256, 48, 5, 5), (384, 256, 3, 3), (384, 192, 3, 3), (256, 192, 3, 3), (4096, 9216)]
    # 3 stem convolutions, 9 modules of 6, 3 layers per aux head and loss3/classifier: a weight, a bias each.
    assert len(GOOGLENET_SHAPES) == 2 * (3 + 9 * 6 + 2 * 3 + 1)
    assert {key: GOOGLENET_SHAPES[key] for key in (
        "conv1/7x7_s2.weight", "conv2/3x3.weight", "inception_3a/5x5.weight", "inception_4e/pool_proj.weight",
        "inception_5b/1x1.bias", "loss1/conv.weight", "loss1/fc.weight", "loss2/conv.weight",
        "loss2/classifier.weight", "loss3/classifier.weight")} == {
        "conv1/7x7_s2.weight": (64, 3, 7, 7), "conv2/3x3.weight": (192, 64, 3, 3),
        "inception_3a/5x5.weight": (32, 16, 5, 5), "inception_4e/pool_proj.weight": (128, 528, 1, 1),
        "inception_5b/1x1.bias": (384,), "loss1/conv.weight": (128, 512, 1, 1),
        "loss1/fc.weight": (1024, 2048),
        "loss2/conv.weight": (128, 528, 1, 1), "loss2/classifier.weight": (1000, 1024),
        "loss3/classifier.weight": (1000, 1024)}


def test_fc_inputs_follow_the_input_size():
    # AlexNet at 195: conv1 (195 - 11) / 4 + 1 = 47, then pools of 23, 11 and 5: fc6 takes 256 x 5 x 5.
    shapes = alexnet_shapes(num_classes=10, size=195)
    assert (shapes["fc6.weight"], shapes["fc8.weight"]) == ((4096, 6400), (10, 4096))
    assert alexnet_forward(random_blobs(shapes), images(195, 1)).shape == (1, 10)
    # GoogLeNet at 256: conv1 128, then ceil-mode pools of 64, 32, 16 (floor: 63, 31, 15); the aux heads'
    # 5x5/3 gives ceil(11 / 3) + 1 = 5 (floor: 4); pool4 8, pool5's 7x7/1 then 2.
    shapes = googlenet_shapes(num_classes=10, size=256)
    assert shapes["loss1/fc.weight"] == (1024, 128 * 5 * 5)
    assert shapes["loss3/classifier.weight"] == (10, 1024 * 2 * 2)
    logits = googlenet_forward(random_blobs(shapes), images(256, 1))
    assert {name: value.shape for name, value in logits.items()} == {
        "loss1/classifier": (1, 10), "loss2/classifier": (1, 10), "loss3/classifier": (1, 10)}


def lrn_loop(x, size, alpha, beta, k):
    """b = a / (k + alpha * the sum of a^2 over the `size` channels centred on c, clipped to [0, C))^beta,
    channel by channel (Krizhevsky et al. 2012, Section 3.3; Caffe's lrn_layer.cpp uses alpha / size)."""
    out, channels, half = np.empty_like(x), x.shape[-1], size // 2
    for c in range(channels):
        window = x[..., max(0, c - half):min(channels, c + half + 1)]
        out[..., c] = x[..., c] / (k + alpha * np.sum(window.astype(np.float64) ** 2, axis=-1)) ** beta
    return out


def activations(shape=(2, 3, 4, 11)) -> np.ndarray:
    """Of the scale of conv1's on Caffe-scale images; 11 channels: windows clipped at both ends, and whole."""
    return np.random.default_rng(5).normal(0, 60, shape).astype(np.float32)


def test_lrn_is_caffes():
    x = activations()
    np.testing.assert_allclose(lrn(x).numpy(), lrn_loop(x, *CAFFE_LRN), rtol=1e-5)  # the defaults
    np.testing.assert_allclose(lrn(x, size=3, alpha=1e-3, beta=0.5, k=2.0).numpy(),
                               lrn_loop(x, 3, 1e-3 / 3, 0.5, 2.0), rtol=1e-5)


def test_caffes_lrn_is_not_the_papers():
    x = activations()
    ours, papers = lrn(x).numpy(), lrn_loop(x, 5, 1e-4, 0.75, 2.0)  # the paper's k = 2, alpha not divided
    assert np.abs(ours - papers).max() > 0.3 * np.abs(ours).max()


def pool_loop(x, method, kernel, stride, pad, pooled):
    """pooling_layer.cpp, Forward_cpu, loop for loop (on NHWC, the output side given)."""
    _, height, width, _ = x.shape
    top = np.empty((x.shape[0], pooled, pooled, x.shape[-1]), np.float32)
    for ph in range(pooled):
        for pw in range(pooled):
            hstart, wstart = ph * stride - pad, pw * stride - pad
            hend, wend = min(hstart + kernel, height + pad), min(wstart + kernel, width + pad)
            pool_size = (hend - hstart) * (wend - wstart)
            hstart, wstart, hend, wend = max(hstart, 0), max(wstart, 0), min(hend, height), min(wend, width)
            window = x[:, hstart:hend, wstart:wend, :]
            if method == "MAX":
                top[:, ph, pw] = window.max(axis=(1, 2))
            else:
                top[:, ph, pw] = window.sum(axis=(1, 2)) / pool_size
    return top


@pytest.mark.parametrize("method, kernel, stride, pad, side, pooled", [
    ("MAX", 3, 2, 0, 8, 4),  # ceil(5 / 2) + 1: the last window, rows 6..8, hangs one row past the input
    ("MAX", 3, 1, 1, 5, 5),  # an inception module's pool branch: the padding never wins
    ("MAX", 2, 2, 1, 5, 3),  # ceil(5 / 2) + 1 = 4, less the window that would start at 6 = 5 + pad
    ("AVE", 5, 3, 0, 8, 2),  # the aux heads' pool, its windows 0..4 and 3..7 inside the input
    ("AVE", 5, 3, 0, 9, 3),  # ... and with a last window of 3 rows: divided by 3 x 5 at the edge
    ("AVE", 3, 2, 1, 8, 5),  # padding counts in the divisor, the overhang past 8 + pad does not
    ("AVE", 7, 1, 0, 7, 1),  # pool5/7x7_s1
])
def test_pooling_is_caffes(method, kernel, stride, pad, side, pooled):
    # Mostly negative values: a zero-padded max pool would show at the borders.
    x = np.random.default_rng(side).normal(-1, 1, (2, side, side, 3)).astype(np.float32)
    assert pooled_size(side, kernel, stride, pad) == pooled
    np.testing.assert_allclose(pool(x, method, kernel, stride, pad).numpy(),
                               pool_loop(x, method, kernel, stride, pad, pooled), rtol=1e-6)


def conv_loop(x, weight, bias, stride, pad, group):
    """conv_layer.cpp, position by position: output channel o, of group g = o // (O / G), sees input
    channels [g C / G, (g + 1) C / G) through weight[o] (C / G, kh, kw)."""
    x = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    out_channels, per_group, kh, kw = weight.shape
    out_h, out_w = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    top = np.empty((x.shape[0], out_h, out_w, out_channels), np.float32)
    for o in range(out_channels):
        g = o // (out_channels // group)
        inputs = x[..., g * per_group:(g + 1) * per_group]
        for i in range(out_h):
            for j in range(out_w):
                patch = inputs[:, i * stride:i * stride + kh, j * stride:j * stride + kw]
                top[:, i, j, o] = np.einsum("nhwc,chw->n", patch, weight[o]) + bias[o]
    return top


def test_grouped_convolution_is_caffes():
    rng = np.random.default_rng(0)
    blobs = {"conv.weight": rng.normal(size=(6, 2, 3, 3)).astype(np.float32),
             "conv.bias": rng.normal(size=6).astype(np.float32)}
    x = rng.normal(size=(2, 7, 6, 4)).astype(np.float32)
    np.testing.assert_allclose(convolution(x, blobs, "conv", stride=2, pad=1, group=2).numpy(),
                               conv_loop(x, blobs["conv.weight"], blobs["conv.bias"], 2, 1, 2), atol=1e-5)


def test_inner_product_flattens_as_caffes_chw_blob():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 2, 3, 4)).astype(np.float32)  # NHWC: H 2, W 3, C 4
    blobs = {"fc.weight": rng.normal(size=(5, 24)).astype(np.float32),
             "fc.bias": rng.normal(size=5).astype(np.float32)}
    expected = np.tile(blobs["fc.bias"], (2, 1))
    for c in range(4):
        for h in range(2):
            for w in range(3):  # input index c * H * W + h * W + w of the (C, H, W) blob
                expected += np.outer(x[:, h, w, c], blobs["fc.weight"][:, c * 6 + h * 3 + w])
    np.testing.assert_allclose(inner_product(x, blobs, "fc").numpy(), expected, rtol=1e-5, atol=1e-5)
