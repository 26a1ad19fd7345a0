"""ResNet's residual blocks (He et al. 2015, Figure 5): basic and bottleneck; and plain, a basic block
without its shortcut, for the paper's plain networks (Section 4.1, Figure 4: degradation).

The shortcut is a projection (1x1 conv + batch norm, the paper's option B) exactly when the
block changes the shape, decided from the tensors as torchvision does, never by a flag.

Every 3x3 convolution pads 1 on each side, as torchvision's conv3x3: at stride 1 that is 'same',
at stride 2 Keras's 'same' would pad 0 above and 1 below and shift every map by half a pixel.
"""

from keras import layers

from builders.arguments import PositiveInt
from builders.layers import conv, conv_size
from builders.registry import register
from builders.tally import Tally

BOTTLENECK_EXPANSION = 4  # the last 1x1 of a bottleneck widens by 4 (Table 1: 64 -> 256)


def _shortcut(x, *, name: str, filters: int, strides: int):
    if strides == 1 and x.shape[-1] == filters:
        return x
    return conv(x, name=f"{name}_0", filters=filters, kernel_size=1, strides=strides,
                activation=None, batch_norm=True)


def _shortcut_size(t: Tally, *, filters: int, strides: int) -> Tally:
    shortcut = t.branch()
    if strides != 1 or t.shape[-1] != filters:  # only an addition reads the projection's batch norm
        conv_size(shortcut, filters=filters, kernel_size=1, strides=strides, activation=None, batch_norm=True,
                  output_kept=False)
    return shortcut


def _merge_size(t: Tally, shortcut: Tally, residual: Tally) -> None:
    """Add (its gradient needs neither input, and ReLU's only its own output), then the ReLU."""
    t.join([shortcut, residual], residual.shape, kept=0)
    t.layer(t.shape)


def _merge(shortcut, residual, name: str):
    x = layers.Add(name=f"{name}_add")([shortcut, residual])
    return layers.Activation("relu", name=f"{name}_out")(x)


def _two_convs(x, *, name: str, filters: int, strides: int):
    """The residual path of a basic block: 3x3 (carries the stride) + BN + ReLU, 3x3 + BN."""
    y = conv(x, name=f"{name}_1", filters=filters, kernel_size=3, strides=strides,
             padding=1, batch_norm=True)
    return conv(y, name=f"{name}_2", filters=filters, kernel_size=3, padding=1,
                activation=None, batch_norm=True)


def _two_convs_size(t: Tally, *, filters: int, strides: int, output_kept: bool) -> Tally:
    conv_size(t, filters=filters, kernel_size=3, strides=strides, padding=1, batch_norm=True)
    conv_size(t, filters=filters, kernel_size=3, padding=1, activation=None, batch_norm=True, output_kept=output_kept)
    return t


def basic_size(t: Tally, *, filters: int, strides: int = 1) -> None:
    shortcut = _shortcut_size(t, filters=filters, strides=strides)
    _merge_size(t, shortcut, _two_convs_size(t.branch(), filters=filters, strides=strides, output_kept=False))


@register("basic", size=basic_size)
def basic(x, *, name: str, filters: PositiveInt, strides: PositiveInt = 1):
    """Two 3x3 convolutions (ResNet-18/34)."""
    shortcut = _shortcut(x, name=name, filters=filters, strides=strides)
    return _merge(shortcut, _two_convs(x, name=name, filters=filters, strides=strides), name)


def plain_size(t: Tally, *, filters: int, strides: int = 1) -> None:
    _two_convs_size(t, filters=filters, strides=strides, output_kept=False)  # only the ReLU reads it
    t.layer(t.shape)


@register("plain", size=plain_size)
def plain(x, *, name: str, filters: PositiveInt, strides: PositiveInt = 1):
    """A basic block without its shortcut: two 3x3 convolutions, each with BN and ReLU (plain-18/34).

    Same layers and names as `basic` but the shortcut and the add, so a plain net has exactly
    the parameters of its ResNet less the projection shortcuts.
    """
    y = _two_convs(x, name=name, filters=filters, strides=strides)
    return layers.Activation("relu", name=f"{name}_out")(y)


def bottleneck_size(t: Tally, *, filters: int, strides: int = 1) -> None:
    width = filters * BOTTLENECK_EXPANSION
    shortcut = _shortcut_size(t, filters=width, strides=strides)
    y = t.branch()
    conv_size(y, filters=filters, kernel_size=1, batch_norm=True)
    conv_size(y, filters=filters, kernel_size=3, strides=strides, padding=1, batch_norm=True)
    conv_size(y, filters=width, kernel_size=1, activation=None, batch_norm=True, output_kept=False)
    _merge_size(t, shortcut, y)


@register("bottleneck", size=bottleneck_size)
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
