"""Where each tensor of a published weights file goes in our models: one table per family, as data.

A source key is `<module><separator><param>` (`layer2.0.bn1.running_var`, `block1_conv1/kernel`). A
row's `source` is a regex that must match the whole module; its `target` is our layer's name, filled
from the regex's named groups (`{s+1}` adds one: torchvision counts stages and blocks from 0 and 1,
Keras Applications' names, which ours follow, from 2 and 1). The row's kind says which of our
weights each param becomes and how its layout changes (see KINDS). A row with `ordinal` set pairs the
source's modules, sorted by that numeric group, with our layers whose names match `target` (a regex),
in the model's order: torchvision numbers VGG's convs by their index in one nn.Sequential
(`features.0`, `features.2`, `features.5`, ...), which no name template can follow.
"""

import dataclasses
import re

import numpy as np

IGNORED = None  # a param the model has no weight for, on purpose (torch's num_batches_tracked)


def oihw_to_hwio(array: np.ndarray, _map_shape) -> np.ndarray:
    """torch's Conv2d weight (out, in, kh, kw) as a Keras Conv2D kernel (kh, kw, in, out)."""
    return array.transpose(2, 3, 1, 0)


def linear_to_dense(array: np.ndarray, _map_shape) -> np.ndarray:
    """torch's Linear weight (out, in), or a 1x1 Conv2d standing for one (timm's VGG fc2:
    (out, in, 1, 1)), as a Keras Dense kernel (in, out)."""
    if array.ndim == 4 and array.shape[2:] == (1, 1):
        array = array[:, :, 0, 0]
    return array.T


def chw_flatten_to_dense(array: np.ndarray, map_shape) -> np.ndarray:
    """The first dense layer after a flatten. torch flattens a map as (C, H, W), Keras (channels
    last) as (H, W, C), so the kernel's input rows are reordered. Accepts torchvision's Linear
    weight (out, C*H*W) and timm's, which reshapes it to a conv spanning the map (out, C, H, W)
    (timm/models/vgg.py, _filter_fn). map_shape is our (H, W, C) before the flatten."""
    height, width, channels = map_shape()
    array = array.reshape(array.shape[0], channels, height, width)
    return array.transpose(2, 3, 1, 0).reshape(height * width * channels, array.shape[0])


def unchanged(array: np.ndarray, _map_shape) -> np.ndarray:
    return array


# A kind: each source param -> (our weight's name in the layer, how the array becomes ours), or IGNORED.
KINDS = {
    "conv": {"weight": ("kernel", oihw_to_hwio), "bias": ("bias", unchanged)},
    "dense": {"weight": ("kernel", linear_to_dense), "bias": ("bias", unchanged)},
    "dense_after_flatten_chw": {"weight": ("kernel", chw_flatten_to_dense), "bias": ("bias", unchanged)},
    # torch's BatchNorm2d; num_batches_tracked only drives momentum=None averaging in training.
    "bn": {"weight": ("gamma", unchanged), "bias": ("beta", unchanged),
           "running_mean": ("moving_mean", unchanged), "running_var": ("moving_variance", unchanged),
           "num_batches_tracked": IGNORED},
    # Keras layers already hold their weights as ours do (HWIO kernels, (in, out) dense, HWC flatten).
    "keras": {"kernel": ("kernel", unchanged), "bias": ("bias", unchanged)},
    # Every weight our vocabulary's layers hold (convolution, dense, batch norm), as they are.
    "ours": {name: (name, unchanged) for name in ("kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance")},
}


@dataclasses.dataclass(frozen=True)
class Row:
    source: str  # regex over the source's module name, matching all of it
    target: str  # our layer's name, `{group}` / `{group+n}` filled from the regex; with ordinal, a regex
    kind: str  # a key of KINDS
    ordinal: str | None = None  # a numeric group: pair source modules and our layers in order

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"row {self.source!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")


@dataclasses.dataclass(frozen=True)
class Layout:
    name: str
    rows: tuple[Row, ...]
    separator: str  # between module and param in a source key
    bn_epsilon: float | None = None  # the source's batch-norm epsilon, which ours must equal
    describes: str = ""

    def split(self, key: str) -> tuple[str, str]:
        module, _, param = key.rpartition(self.separator)
        return module, param


# torchvision.models.resnet (BasicBlock, Bottleneck; downsample = Sequential(conv1x1, BatchNorm2d)),
# also as timm publishes it (timm/resnet50.tv_in1k): layer{1..4}.{i} is our conv{2..5}_block{i+1}.
_RESNET_BLOCK = r"layer(?P<s>[1-4])\.(?P<i>\d+)"
TORCHVISION_RESNET = Layout(
    name="torchvision_resnet",
    separator=".",
    bn_epsilon=1e-5,  # nn.BatchNorm2d's default, which torchvision's ResNet keeps
    describes="torchvision's ResNet state dict (timm/resnet*.tv_in1k)",
    rows=(
        Row(r"conv1", "conv1_conv", "conv"),
        Row(r"bn1", "conv1_bn", "bn"),
        Row(_RESNET_BLOCK + r"\.conv(?P<k>[1-3])", "conv{s+1}_block{i+1}_{k}_conv", "conv"),
        Row(_RESNET_BLOCK + r"\.bn(?P<k>[1-3])", "conv{s+1}_block{i+1}_{k}_bn", "bn"),
        Row(_RESNET_BLOCK + r"\.downsample\.0", "conv{s+1}_block{i+1}_0_conv", "conv"),
        Row(_RESNET_BLOCK + r"\.downsample\.1", "conv{s+1}_block{i+1}_0_bn", "bn"),
        Row(r"fc", "fc", "dense"),
    ),
)

# torchvision.models.vgg (features, classifier.0/3/6) and timm's renaming of it (timm/vgg16.tv_in1k:
# pre_logits.fc1/fc2 as convs, head.fc). Only convs in `features` hold weights (no batch norm: the
# plain VGGs). Both flatten (C, H, W) in front of fc6.
_OUR_VGG_CONVS = r"conv\d+(_\d+|_block\d+)?_conv"  # vgg11's conv1_1_conv, vgg16's conv3_block2_conv
TORCHVISION_VGG = Layout(
    name="torchvision_vgg",
    separator=".",
    describes="torchvision's VGG state dict, with its own names or timm's (timm/vgg16.tv_in1k)",
    rows=(
        Row(r"features\.(?P<index>\d+)", _OUR_VGG_CONVS, "conv", ordinal="index"),
        Row(r"classifier\.0|pre_logits\.fc1", "fc6", "dense_after_flatten_chw"),
        Row(r"classifier\.3|pre_logits\.fc2", "fc7", "dense"),
        Row(r"classifier\.6|head\.fc", "fc8", "dense"),
    ),
)

# keras.applications.vgg16 / vgg19 (block{b}_conv{i}, fc1, fc2, predictions), as tensors.opened keys
# their HDF5 files: `<layer>/kernel`, `<layer>/bias`.
KERAS_APPLICATIONS_VGG = Layout(
    name="keras_applications_vgg",
    separator="/",
    describes="Keras Applications' VGG16/VGG19 HDF5 weights (vgg16_weights_tf_dim_ordering_tf_kernels.h5)",
    rows=(
        Row(r"block(?P<b>\d+)_conv(?P<i>\d+)", "conv{b}_block{i}_conv", "keras"),
        Row(r"fc1", "fc6", "keras"),
        Row(r"fc2", "fc7", "keras"),
        Row(r"predictions", "fc8", "keras"),
    ),
)

# BVLC's Caffe models, as runner/weights/caffe.py reads them: `<layer>.weight` (convolutions OIHW, as
# torch's; grouped ones (out, in / group, kh, kw), whose groups take contiguous channel blocks as Keras's
# `groups` do) and `<layer>.bias`. Layer names from models/bvlc_alexnet/deploy.prototxt.
CAFFE_ALEXNET = Layout(
    name="caffe_alexnet",
    separator=".",
    describes="BVLC's Caffe AlexNet (bvlc_alexnet.caffemodel)",
    rows=(
        Row(r"conv(?P<i>[1-5])", "conv{i}_conv", "conv"),
        Row(r"fc6", "fc6", "dense_after_flatten_chw"),  # Caffe's InnerProduct flattens (C, H, W)
        Row(r"fc(?P<i>[78])", "fc{i}", "dense"),
    ),
)

# BVLC's GoogLeNet (models/bvlc_googlenet/train_val.prototxt, whose snapshot holds the auxiliary
# heads loss1/* and loss2/*: a 1x1 conv, fc 1024 after a (C, H, W) flatten, the classifier).
CAFFE_GOOGLENET = Layout(
    name="caffe_googlenet",
    separator=".",
    describes="BVLC's Caffe GoogLeNet (bvlc_googlenet.caffemodel)",
    rows=(
        Row(r"conv1/7x7_s2", "conv1_conv", "conv"),
        Row(r"conv2/3x3_reduce", "conv2_reduce_conv", "conv"),
        Row(r"conv2/3x3", "conv2_conv", "conv"),
        Row(r"(?P<m>inception_\d[a-e])/(?P<b>1x1|3x3_reduce|3x3|5x5_reduce|5x5|pool_proj)", "{m}_{b}_conv", "conv"),
        Row(r"loss(?P<k>[12])/conv", "aux{k}_proj_conv", "conv"),
        Row(r"loss(?P<k>[12])/fc", "aux{k}_fc", "dense_after_flatten_chw"),
        Row(r"loss(?P<k>[12])/classifier", "aux{k}_logits", "dense"),
        Row(r"loss3/classifier", "classifier", "dense"),
    ),
)

# A model this project saved (runner/weights/ours.py reads it as `<layer>/<weight>`): names are ours.
OURS = Layout(
    name="ours",
    separator="/",
    describes="a model saved by this project (.keras, .weights.h5), by layer name",
    rows=(Row(r"(?P<layer>.+)", "{layer}", "ours"),),
)

LAYOUTS = {layout.name: layout for layout in (TORCHVISION_RESNET, TORCHVISION_VGG, KERAS_APPLICATIONS_VGG,
                                               CAFFE_ALEXNET, CAFFE_GOOGLENET, OURS)}

_FIELD = re.compile(r"\{(\w+)(?:\+(\d+))?\}")


def fill(template: str, groups: dict[str, str]) -> str:
    """`conv{s+1}_block{i+1}_{k}_conv` with s=2, i=0, k=3 -> `conv3_block1_3_conv`."""
    def value(field: re.Match) -> str:
        name, shift = field[1], field[2]
        return str(int(groups[name]) + int(shift)) if shift else groups[name]
    return _FIELD.sub(value, template)
