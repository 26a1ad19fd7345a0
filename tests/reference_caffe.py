"""An independent forward pass of BVLC's Caffe AlexNet and GoogLeNet in plain TensorFlow ops, written from
the prototxts (BVLC/caffe models/bvlc_alexnet/deploy.prototxt, models/bvlc_googlenet/deploy.prototxt and,
for the auxiliary heads loss1/* and loss2/*, models/bvlc_googlenet/train_val.prototxt) and from Caffe's
layer sources (src/caffe/layers/: conv_layer, base_conv_layer, lrn_layer, pooling_layer, inner_product_layer),
on blobs of numpy arrays in Caffe's names and layouts: `<layer>.weight` (out, in / group, kh, kw) for a
Convolution, (out, in) for an InnerProduct, `<layer>.bias` (out,).

It shares nothing with builders/ or runner/: it pads convolutions with zeros on both sides, splits the
grouped ones itself, writes Caffe's LRN and its ceil-mode pooling from their loops, and flattens for an
InnerProduct in Caffe's (C, H, W) order. Images are NHWC float32 as Caffe takes them (BGR, mean
subtracted, 0-255 scale). Dropout is the identity (the TEST phase).
"""

import math

import numpy as np
import tensorflow as tf

# models/bvlc_alexnet/deploy.prototxt, convolution_param:
# name -> (num_output, kernel_size, stride, pad, group).
ALEXNET_CONVS = {
    "conv1": (96, 11, 4, 0, 1),
    "conv2": (256, 5, 1, 2, 2),
    "conv3": (384, 3, 1, 1, 1),
    "conv4": (384, 3, 1, 1, 2),
    "conv5": (256, 3, 1, 1, 2),
}
ALEXNET_NORMS = {"conv1": "norm1", "conv2": "norm2"}  # LRN after relu1 and relu2
ALEXNET_POOLS = {"conv1": "pool1", "conv2": "pool2", "conv5": "pool5"}  # after norm1, norm2 and relu5
ALEXNET_HIDDEN = 4096  # fc6, fc7: inner_product_param num_output

# models/bvlc_googlenet/deploy.prototxt, the convolutions before inception_3a:
# name -> (num_output, kernel_size, stride, pad).
GOOGLENET_STEM = {
    "conv1/7x7_s2": (64, 7, 2, 3),
    "conv2/3x3_reduce": (64, 1, 1, 0),
    "conv2/3x3": (192, 3, 1, 1),
}
# The same file, num_output of each module's convolutions, in the order 1x1, 3x3_reduce, 3x3, 5x5_reduce,
# 5x5, pool_proj (the 1x1s kernel_size 1 pad 0, the 3x3 pad 1, the 5x5 pad 2, all stride 1).
INCEPTIONS = {
    "inception_3a": (64, 96, 128, 16, 32, 32),
    "inception_3b": (128, 128, 192, 32, 96, 64),
    "inception_4a": (192, 96, 208, 16, 48, 64),
    "inception_4b": (160, 112, 224, 24, 64, 64),
    "inception_4c": (128, 128, 256, 24, 64, 64),
    "inception_4d": (112, 144, 288, 32, 64, 64),
    "inception_4e": (256, 160, 320, 32, 128, 128),
    "inception_5a": (256, 160, 320, 32, 128, 128),
    "inception_5b": (384, 192, 384, 48, 128, 128),
}
MODULE_POOLS = {"inception_3b": "pool3/3x3_s2", "inception_4e": "pool4/3x3_s2"}
# train_val.prototxt: loss1/ave_pool's bottom is inception_4a/output, loss2/ave_pool's inception_4d/output.
AUX_HEADS = {"inception_4a": "loss1", "inception_4d": "loss2"}
AUX_POOL = (5, 3)  # loss*/ave_pool: AVE, kernel_size 5, stride 3
AUX_CONV, AUX_HIDDEN = 128, 1024  # loss*/conv num_output (kernel_size 1), loss*/fc num_output

# Both prototxts: pool1, pool2, pool5 (AlexNet) and pool1/3x3_s2 ... pool4/3x3_s2 (GoogLeNet) are
# MAX, kernel_size 3, stride 2; GoogLeNet's pool5/7x7_s1 is AVE, kernel_size 7, stride 1.
MAX_POOL = (3, 2)
POOL5 = (7, 1)
# Every LRN of both prototxts: local_size 5, alpha 0.0001, beta 0.75; k is caffe.proto's default, 1.
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 1.0


def conv_size(size: int, kernel: int, stride: int = 1, pad: int = 0) -> int:
    """conv_layer.cpp, compute_output_shape: (H + 2 pad - kernel) / stride + 1, rounded down."""
    return (size + 2 * pad - kernel) // stride + 1


def pooled_size(size: int, kernel: int, stride: int, pad: int = 0) -> int:
    """pooling_layer.cpp: ceil((H + 2 pad - kernel) / stride) + 1, less one when padded and the last window
    would start at or past H + pad."""
    pooled = math.ceil((size + 2 * pad - kernel) / stride) + 1
    if pad and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


def alexnet_shapes(num_classes: int = 1000, size: int = 227) -> dict[str, tuple[int, ...]]:
    """Every blob of AlexNet for `num_classes` and a `size` x `size` input; fc6's input follows the size."""
    shapes: dict[str, tuple[int, ...]] = {}
    channels = 3
    for name, (out, kernel, stride, pad, group) in ALEXNET_CONVS.items():
        _add(shapes, name, (out, channels // group, kernel, kernel))
        channels, size = out, conv_size(size, kernel, stride, pad)
        if name in ALEXNET_POOLS:
            size = pooled_size(size, *MAX_POOL)
    fan_in = channels * size * size  # pool5 flattened
    for name, units in (("fc6", ALEXNET_HIDDEN), ("fc7", ALEXNET_HIDDEN), ("fc8", num_classes)):
        _add(shapes, name, (units, fan_in))
        fan_in = units
    return shapes


def googlenet_shapes(num_classes: int = 1000, size: int = 224) -> dict[str, tuple[int, ...]]:
    """Every blob of GoogLeNet, auxiliary heads included, for `num_classes` and a `size` x `size` input;
    loss1/fc's, loss2/fc's and loss3/classifier's inputs follow the size."""
    shapes: dict[str, tuple[int, ...]] = {}
    aux_side, pool5_side = _googlenet_sides(size)
    channels = 3
    for name, (out, kernel, _, _) in GOOGLENET_STEM.items():
        _add(shapes, name, (out, channels, kernel, kernel))
        channels = out
    for module, widths in INCEPTIONS.items():
        channels = _add_inception(shapes, module, channels, widths)
        if module in AUX_HEADS:
            head = AUX_HEADS[module]
            _add(shapes, f"{head}/conv", (AUX_CONV, channels, 1, 1))
            _add(shapes, f"{head}/fc", (AUX_HIDDEN, AUX_CONV * aux_side * aux_side))
            _add(shapes, f"{head}/classifier", (num_classes, AUX_HIDDEN))
    _add(shapes, "loss3/classifier", (num_classes, channels * pool5_side * pool5_side))
    return shapes


def _googlenet_sides(size: int) -> tuple[int, int]:
    """The side of the aux heads' pooled maps and of pool5's output. The 1x1 convolutions, the padded 3x3
    and 5x5 ones and the modules' 3x3/1 pad 1 pools keep the side; conv1 and the 3x3/2 pools shrink it."""
    _, kernel, stride, pad = GOOGLENET_STEM["conv1/7x7_s2"]
    side = conv_size(size, kernel, stride, pad)
    for _ in range(3):  # pool1/3x3_s2, pool2/3x3_s2, pool3/3x3_s2: inception_4a ... 4e's side
        side = pooled_size(side, *MAX_POOL)
    return pooled_size(side, *AUX_POOL), pooled_size(pooled_size(side, *MAX_POOL), *POOL5)


def _add_inception(shapes, module, channels, widths) -> int:
    b1x1, reduce3, b3x3, reduce5, b5x5, proj = widths
    branches = {"1x1": (b1x1, channels, 1), "3x3_reduce": (reduce3, channels, 1),
                "3x3": (b3x3, reduce3, 3), "5x5_reduce": (reduce5, channels, 1),
                "5x5": (b5x5, reduce5, 5), "pool_proj": (proj, channels, 1)}  # (num_output, bottom's, kernel)
    for branch, (out, fan_in, kernel) in branches.items():
        _add(shapes, f"{module}/{branch}", (out, fan_in, kernel, kernel))
    return b1x1 + b3x3 + b5x5 + proj  # the Concat's channels


def _add(shapes, name, weight):
    shapes[f"{name}.weight"], shapes[f"{name}.bias"] = weight, weight[:1]


# What each net subtracts from its 0-255 BGR input: AlexNet's mean image's mean pixel (Caffe's
# examples/00-classification.ipynb), GoogLeNet's train_val.prototxt mean_value; B, G, R.
ALEXNET_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)
GOOGLENET_MEAN_BGR = (104.0, 117.0, 123.0)

ALEXNET_SHAPES = alexnet_shapes()
GOOGLENET_SHAPES = googlenet_shapes()


def random_blobs(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 blobs: He-scaled weights (std sqrt(2 / fan_in), fan_in = in / group * kh * kw for a
    Convolution, in for an InnerProduct) and small random biases."""
    rng = np.random.default_rng(seed)
    blobs = {}
    for key, shape in shapes.items():
        if key.endswith(".weight"):
            std = np.float32(np.sqrt(2.0 / np.prod(shape[1:])))  # He et al. 2015 (PReLU paper), fan in
            blobs[key] = rng.standard_normal(shape, dtype=np.float32) * std
        else:
            blobs[key] = rng.normal(0, 0.1, shape).astype(np.float32)
    return blobs


def convolution(x, blobs, name, stride=1, pad=0, group=1):
    """conv_layer.cpp / base_conv_layer.cpp: `pad` zeros on both sides; group g convolves the g-th
    contiguous block of input channels with the g-th block of output channels (weight (O, C / G, kh, kw));
    plus the bias."""
    kernel = tf.constant(blobs[f"{name}.weight"].transpose(2, 3, 1, 0))  # OIHW -> HWIO
    x = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    outputs = [tf.nn.conv2d(part, weights, strides=stride, padding="VALID")
               for part, weights in zip(tf.split(x, group, axis=-1), tf.split(kernel, group, axis=-1))]
    return tf.concat(outputs, axis=-1) + blobs[f"{name}.bias"]


def inner_product(x, blobs, name):
    """inner_product_layer.cpp: the bottom flattened as Caffe's (C, H, W) blob, times weight (out, in)
    transposed, plus the bias."""
    if len(x.shape) == 4:
        x = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [x.shape[0], -1])  # NHWC -> NCHW, then flatten
    return x @ tf.constant(blobs[f"{name}.weight"].T) + blobs[f"{name}.bias"]


def lrn(x, size=LRN_SIZE, alpha=LRN_ALPHA, beta=LRN_BETA, k=LRN_K):
    """lrn_layer.cpp, CrossChannelForward_cpu: scale = k + alpha / size * the sum of squares over the `size`
    channels centred on c, the channel axis zero-padded by (size - 1) / 2 at both ends; top = bottom *
    scale^-beta."""
    half, channels = (size - 1) // 2, x.shape[-1]
    squares = tf.pad(tf.square(x), [[0, 0], [0, 0], [0, 0], [half, half]])
    window = tf.add_n([squares[..., offset:offset + channels] for offset in range(size)])
    return x * tf.pow(k + alpha / size * window, -beta)


def pool(x, method, kernel, stride, pad=0):
    """pooling_layer.cpp, Forward_cpu, on the output side pooled_size gives. MAX: the largest value in the
    window's in-bounds part. AVE: the in-bounds sum over the window's size clipped to H + pad (padding
    counts, an overhang past it does not)."""
    height, width = x.shape[1:3]
    out_h, out_w = pooled_size(height, kernel, stride, pad), pooled_size(width, kernel, stride, pad)
    # `pad` before, and after it as much as the last window needs (out - 1 strides, then a kernel).
    paddings = [[0, 0], [pad, (out_h - 1) * stride + kernel - height - pad],
                [pad, (out_w - 1) * stride + kernel - width - pad], [0, 0]]
    if method == "MAX":
        # Every window starts before H (pooled_size's rule) and pad < kernel: -inf never wins.
        padded = tf.pad(x, paddings, constant_values=-np.inf)
        return tf.nn.max_pool2d(padded, ksize=kernel, strides=stride, padding="VALID")
    ones = tf.ones([kernel, kernel, x.shape[-1], 1], x.dtype)
    sums = tf.nn.depthwise_conv2d(tf.pad(x, paddings), ones, [1, stride, stride, 1], padding="VALID")
    areas = np.outer(_window_sizes(height, out_h, kernel, stride, pad),
                     _window_sizes(width, out_w, kernel, stride, pad))
    return sums / areas[None, :, :, None].astype(np.float32)


def _window_sizes(size, pooled, kernel, stride, pad):
    """pooling_layer.cpp's AVE pool_size along one axis: hend = min(hstart + kernel, H + pad) - hstart."""
    starts = np.arange(pooled) * stride - pad
    return np.minimum(starts + kernel, size + pad) - starts


def _conv_relu(x, blobs, name, stride=1, pad=0, group=1):
    return tf.nn.relu(convolution(x, blobs, name, stride, pad, group))  # every Convolution's in-place ReLU


def alexnet_tops(blobs, images: np.ndarray) -> dict[str, tf.Tensor]:
    """Every top of deploy.prototxt by name (conv1 ... conv5 and fc6, fc7 after their in-place ReLU)."""
    tops, x = {}, tf.constant(images)
    for name, (_, _, stride, pad, group) in ALEXNET_CONVS.items():
        x = tops[name] = _conv_relu(x, blobs, name, stride, pad, group)
        if name in ALEXNET_NORMS:
            x = tops[ALEXNET_NORMS[name]] = lrn(x)
        if name in ALEXNET_POOLS:
            x = tops[ALEXNET_POOLS[name]] = pool(x, "MAX", *MAX_POOL)
    for name in ("fc6", "fc7"):  # relu6, relu7; drop6, drop7 are the identity
        x = tops[name] = tf.nn.relu(inner_product(x, blobs, name))
    tops["fc8"] = inner_product(x, blobs, "fc8")
    return tops


def alexnet_forward(blobs, images: np.ndarray) -> np.ndarray:
    """fc8's logits for NHWC float32 `images`."""
    return alexnet_tops(blobs, images)["fc8"].numpy()


def googlenet_tops(blobs, images: np.ndarray) -> dict[str, tf.Tensor]:
    """Every top of deploy.prototxt, and train_val.prototxt's loss1/* and loss2/*, by name (a Convolution's
    or a hidden InnerProduct's after its in-place ReLU)."""
    tops, x = {}, tf.constant(images)
    stem = {name: GOOGLENET_STEM[name][2:] for name in GOOGLENET_STEM}  # (stride, pad)
    x = tops["conv1/7x7_s2"] = _conv_relu(x, blobs, "conv1/7x7_s2", *stem["conv1/7x7_s2"])
    x = tops["pool1/3x3_s2"] = pool(x, "MAX", *MAX_POOL)
    x = tops["pool1/norm1"] = lrn(x)
    x = tops["conv2/3x3_reduce"] = _conv_relu(x, blobs, "conv2/3x3_reduce", *stem["conv2/3x3_reduce"])
    x = tops["conv2/3x3"] = _conv_relu(x, blobs, "conv2/3x3", *stem["conv2/3x3"])
    x = tops["conv2/norm2"] = lrn(x)
    x = tops["pool2/3x3_s2"] = pool(x, "MAX", *MAX_POOL)
    for module in INCEPTIONS:
        x = _inception(tops, blobs, x, module)
        if module in AUX_HEADS:
            _aux_head(tops, blobs, x, AUX_HEADS[module])
        if module in MODULE_POOLS:
            x = tops[MODULE_POOLS[module]] = pool(x, "MAX", *MAX_POOL)
    x = tops["pool5/7x7_s1"] = pool(x, "AVE", *POOL5)  # pool5/drop_7x7_s1 is the identity
    tops["loss3/classifier"] = inner_product(x, blobs, "loss3/classifier")
    return tops


def googlenet_forward(blobs, images: np.ndarray) -> dict[str, np.ndarray]:
    """The logits of the three classifiers, by name: loss1/classifier, loss2/classifier (the auxiliary
    heads) and loss3/classifier (the network's output, deploy.prototxt's only one)."""
    tops = googlenet_tops(blobs, images)
    return {f"loss{index}/classifier": tops[f"loss{index}/classifier"].numpy() for index in (1, 2, 3)}


def _inception(tops, blobs, x, module):
    """An inception module: four branches, each Convolution with its ReLU, concatenated on the channel axis
    in the Concat's bottom order 1x1, 3x3, 5x5, pool_proj; the pool branch is a MAX 3x3/1 pad 1."""
    def conv(branch, bottom, pad=0):
        tops[f"{module}/{branch}"] = _conv_relu(bottom, blobs, f"{module}/{branch}", pad=pad)
        return tops[f"{module}/{branch}"]

    tops[f"{module}/pool"] = pool(x, "MAX", 3, 1, pad=1)
    branches = [conv("1x1", x), conv("3x3", conv("3x3_reduce", x), pad=1),
                conv("5x5", conv("5x5_reduce", x), pad=2), conv("pool_proj", tops[f"{module}/pool"])]
    tops[f"{module}/output"] = tf.concat(branches, axis=-1)
    return tops[f"{module}/output"]


def _aux_head(tops, blobs, x, head):
    """train_val.prototxt's loss1/* and loss2/*: AVE 5x5/3, a 1x1 Convolution with its ReLU, an InnerProduct
    with its ReLU, dropout (the identity), the classifier."""
    tops[f"{head}/ave_pool"] = pool(x, "AVE", *AUX_POOL)
    tops[f"{head}/conv"] = _conv_relu(tops[f"{head}/ave_pool"], blobs, f"{head}/conv")
    tops[f"{head}/fc"] = tf.nn.relu(inner_product(tops[f"{head}/conv"], blobs, f"{head}/fc"))
    tops[f"{head}/classifier"] = inner_product(tops[f"{head}/fc"], blobs, f"{head}/classifier")
