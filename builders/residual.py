"""ResNet's residual blocks (He et al. 2015, Figure 5): basic and bottleneck; and plain, a basic block
without its shortcut, for the paper's plain networks (Section 4.1, Figure 4: degradation).

The shortcut is a projection (1x1 conv + batch norm, the paper's option B) exactly when the
block changes the shape, decided from the tensors as torchvision does, never by a flag.

Every 3x3 convolution pads 1 on each side, as torchvision's conv3x3: at stride 1 that is 'same',
at stride 2 Keras's 'same' would pad 0 above and 1 below and shift every map by half a pixel.
"""

from keras import layers

from builders.arguments import PositiveInt
from builders.layers import conv
from builders.registry import register

BOTTLENECK_EXPANSION = 4  # the last 1x1 of a bottleneck widens by 4 (Table 1: 64 -> 256)


def _shortcut(x, *, name: str, filters: int, strides: int):
    if strides == 1 and x.shape[-1] == filters:
        return x
    return conv(x, name=f"{name}_0", filters=filters, kernel_size=1, strides=strides,
                activation=None, batch_norm=True)


def _merge(shortcut, residual, name: str):
    x = layers.Add(name=f"{name}_add")([shortcut, residual])
    return layers.Activation("relu", name=f"{name}_out")(x)


def _two_convs(x, *, name: str, filters: int, strides: int):
    """The residual path of a basic block: 3x3 (carries the stride) + BN + ReLU, 3x3 + BN."""
    y = conv(x, name=f"{name}_1", filters=filters, kernel_size=3, strides=strides,
             padding=1, batch_norm=True)
    return conv(y, name=f"{name}_2", filters=filters, kernel_size=3, padding=1,
                activation=None, batch_norm=True)


@register("basic")
def basic(x, *, name: str, filters: PositiveInt, strides: PositiveInt = 1):
    """Two 3x3 convolutions (ResNet-18/34)."""
    shortcut = _shortcut(x, name=name, filters=filters, strides=strides)
    return _merge(shortcut, _two_convs(x, name=name, filters=filters, strides=strides), name)


@register("plain")
def plain(x, *, name: str, filters: PositiveInt, strides: PositiveInt = 1):
    """A basic block without its shortcut: two 3x3 convolutions, each with BN and ReLU (plain-18/34).

    Same layers and names as `basic` but the shortcut and the add, so a plain net has exactly
    the parameters of its ResNet less the projection shortcuts.
    """
    y = _two_convs(x, name=name, filters=filters, strides=strides)
    return layers.Activation("relu", name=f"{name}_out")(y)


@register("bottleneck")
def bottleneck(x, *, name: str, filters: PositiveInt, strides: PositiveInt = 1):
    """1x1 reduce, 3x3, 1x1 expand by 4 (ResNet-50/101/152).

    The stride sits on the 3x3 convolution (ResNet v1.5, as torchvision); the paper puts it on
    the first 1x1. Parameter counts are the same either way.
    """
    width = filters * BOTTLENECK_EXPANSION
    shortcut = _shortcut(x, name=name, filters=width, strides=strides)
    y = conv(x, name=f"{name}_1", filters=filters, kernel_size=1, batch_norm=True)
    y = conv(y, name=f"{name}_2", filters=filters, kernel_size=3, strides=strides,
             padding=1, batch_norm=True)
    y = conv(y, name=f"{name}_3", filters=width, kernel_size=1, activation=None, batch_norm=True)
    return _merge(shortcut, y, name)
