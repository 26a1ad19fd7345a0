"""Single-layer blocks: convolution, global average pooling, LRN, dropout, flatten, dense (the
windowed pools are in pooling.py).

Layer names follow Keras Applications (`conv1_conv`, `conv1_bn`, `conv1_relu`) so saved models
reload by name and `names.py` maps each layer back onto the row that made them.
"""

import math
from typing import Literal

import keras
from keras import layers, ops

from builders.arguments import Fraction, NonNegativeInt, PositiveInt
from builders.geometry import Geometry
from builders.registry import register
from builders.tally import Tally, Unfollowable

# An int is the papers' explicit padding on each side (AlexNet conv2: 5x5, pad 2): zeros for a
# convolution, -inf for a max pool (pooling.py). Keras's 'same' at stride 2 pads 0 before and 1
# after (2 and 3 for 7x7/2 on 224): never use it where a reference pads symmetrically.
Padding = Literal["valid", "same"] | NonNegativeInt


def conv_size(t: Tally, *, filters: int, kernel_size: int, strides: int = 1, padding: Padding = "valid",
              groups: int = 1, activation: str | None = "relu", batch_norm: bool = False,
              output_kept: bool = True) -> None:
    """`conv`'s layers. `output_kept`: False where only an addition reads the output (a residual
    branch's last batch norm), which needs nothing of it for the gradient."""
    height, width, channels = t.feature_map()
    if channels % groups or filters % groups:
        raise Unfollowable(f"{channels} channels in {groups} groups")
    if isinstance(padding, int):
        height, width = height + 2 * padding, width + 2 * padding
        t.layer((height, width, channels))  # kept: the convolution's gradient needs its input
        padding = "valid"
    window = Geometry(kernel_size, strides, padding)
    weights = kernel_size * kernel_size * channels // groups * filters + (0 if batch_norm else filters)
    last = output_kept and not activation
    # Batch norm's gradient needs its input; an activation's, its own output, not its input.
    t.layer((window.output_size(height), window.output_size(width), filters), weights,
            kept=batch_norm or last)
    if batch_norm:  # gamma and beta, and the moving mean and variance, which do not train
        t.layer(t.shape, 4 * filters, frozen=2 * filters, kept=last)
    if activation:
        t.layer(t.shape)


@register("conv", kernel="kernel_size", size=conv_size)
def conv(
    x,
    *,
    name: str,
    filters: PositiveInt,
    kernel_size: PositiveInt,
    strides: PositiveInt = 1,
    padding: Padding = "valid",
    groups: PositiveInt = 1,
    activation: str | None = "relu",
    batch_norm: bool = False,
):
    if isinstance(padding, int):
        x = layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
        padding = "valid"
    # Batch norm's beta replaces the bias (He et al. 2015; torchvision and Keras Applications).
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, groups=groups,
        use_bias=not batch_norm, name=f"{name}_conv",
    )(x)
    if batch_norm:
        x = layers.BatchNormalization(epsilon=1e-5, name=f"{name}_bn")(x)
    if activation:
        x = layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def global_avgpool_size(t: Tally) -> None:
    t.layer(t.feature_map()[2:])


@register("global_avgpool", size=global_avgpool_size)
def global_avgpool(x, *, name: str):
    return layers.GlobalAveragePooling2D(name=name)(x)


def flatten_size(t: Tally) -> None:
    t.layer((math.prod(t.shape),), kept=0)  # a reshape: a view of its input, no copy


@register("flatten", size=flatten_size)
def flatten(x, *, name: str):
    return layers.Flatten(name=name)(x)


def dropout_size(t: Tally, *, rate: float) -> None:
    t.layer(t.shape, kept=2)  # the output, and the mask its gradient multiplies by


@register("dropout", size=dropout_size)
def dropout(x, *, name: str, rate: Fraction):
    return layers.Dropout(rate, name=name)(x)


def dense_size(t: Tally, *, units: int, activation: str | None = "relu") -> None:
    t.layer((*t.shape[:-1], units), t.shape[-1] * units + units)  # Keras's Dense acts on the last axis


@register("dense", size=dense_size, last_row_defaults={"activation": None})  # the last row is the logits
def dense(x, *, name: str, units: PositiveInt, activation: str | None = "relu"):
    return layers.Dense(units, activation=activation, name=name)(x)


def lrn_size(t: Tally, *, depth_radius: int = 5, bias: float = 1.0, alpha: float = 1.0, beta: float = 0.5) -> None:
    # Kept of its keras.ops: the window sum, bias + alpha * sum, its power, and the output.
    t.layer(t.feature_map(), kept=4)


@register("lrn", size=lrn_size)
def lrn(x, *, name: str, depth_radius: NonNegativeInt = 5, bias: float = 1.0, alpha: float = 1.0, beta: float = 0.5):
    return LocalResponseNormalization(depth_radius, bias, alpha, beta, name=name)(x)


@keras.saving.register_keras_serializable(package="builders")
class LocalResponseNormalization(layers.Layer):
    """Local response normalisation across channels (Krizhevsky et al. 2012, Section 3.3).

    b_c = a_c / (bias + alpha * sum of a_j^2 for |j - c| <= depth_radius) ** beta, with the
    arguments and defaults of tf.nn.local_response_normalization (alpha is not divided by the
    window size, unlike Caffe's). Keras 3 has no LRN layer, so it is written with keras.ops and
    runs on every backend.
    """

    def __init__(self, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, **kwargs):
        super().__init__(**kwargs)
        self.depth_radius = depth_radius
        self.bias = bias
        self.alpha = alpha
        self.beta = beta

    def call(self, inputs):
        # In float32 under mixed precision, as Keras's BatchNormalization does: float16 squares overflow
        # from activations of 256 (65504 is its largest number) and the layer then outputs zeros; weights
        # trained in Caffe on 0-255 pixels (AlexNet's, GoogLeNet's) can reach such activations.
        values = ops.cast(inputs, "float32")
        radius = self.depth_radius
        channels = values.shape[-1]
        squares = ops.pad(ops.square(values), [[0, 0]] * (len(values.shape) - 1) + [[radius, radius]])
        # The window is a handful of channels: summing shifted slices beats a convolution here.
        window_sum = sum(squares[..., shift : shift + channels] for shift in range(2 * radius + 1))
        return ops.cast(values / ops.power(self.bias + self.alpha * window_sum, self.beta), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha, beta=self.beta)
        return config
