"""Pooling rows, with the padding of the papers' Caffe models and torchvision.

Keras pools take 'valid' or 'same', and 'same' at stride 2 pads asymmetrically (a 3x3/2 pool on
112 pads 0 above and 1 below). The references pad symmetrically, with an explicit int, and Caffe
pools in ceil mode (see geometry.py). Those are built here as an explicit pad and a 'valid' pool:

* max: the pad is -inf (`ConstantPadding2D`, layer `<row>_pad`), so a padded cell never wins, as
  in torch and Caffe; then `MaxPooling2D` (`<row>`). Zeros would win over a negative map's border.
* average: `count_padding` (torch's count_include_pad; Caffe counts too) says whether the symmetric
  pad counts in a window's divisor; ceil mode's overhang never counts (torch, Caffe). A uniform
  divisor is ZeroPadding2D + AveragePooling2D; any other is `PaddedAveragePooling2D`, one layer.

'valid' or 'same' without ceil mode builds exactly the one Keras layer it always has.
"""

from typing import Any, Mapping

import keras
from keras import layers, ops

from builders.arguments import PositiveInt
from builders.errors import SpecError
from builders.geometry import Geometry
from builders.layers import Padding
from builders.registry import register
from builders.tally import Tally


def check_pool(args: Mapping[str, Any], path: str) -> None:
    """A pooling row's padding and ceil_mode together (`Block.check`)."""
    padding, kernel = args.get("padding", "valid"), args["pool_size"]
    if args.get("ceil_mode") and padding == "same":
        raise SpecError(f"{path}.ceil_mode: ceil mode needs padding 'valid' or an int; "
                        "'same' already rounds up, to ceil(in / stride)")
    # torch's limit (pool2d_shape_check): a wider pad leaves windows with no input cell at all.
    if isinstance(padding, int) and padding > kernel // 2:
        raise SpecError(f"{path}.padding: at most half the pool size ({kernel // 2} for {kernel}), "
                        f"got {padding}: a window wholly in the padding would see no input")


def maxpool_size(t: Tally, *, pool_size: int, strides: int | None = None, padding: Padding = "valid",
                 ceil_mode: bool = False) -> None:
    window = Geometry(pool_size, strides or pool_size, padding, ceil_mode)
    if isinstance(padding, str) and not ceil_mode:
        t.layer(_pooled(t, window))
    else:
        max_pool_size(t, window)


@register("maxpool", kernel="pool_size", stride_defaults_to_kernel=True, check=check_pool, size=maxpool_size)
def maxpool(x, *, name: str, pool_size: PositiveInt, strides: PositiveInt | None = None,
            padding: Padding = "valid", ceil_mode: bool = False):
    if isinstance(padding, str) and not ceil_mode:
        return layers.MaxPooling2D(pool_size, strides, padding, name=name)(x)
    return max_pool(x, name, Geometry(pool_size, strides or pool_size, padding, ceil_mode))


def avgpool_size(t: Tally, *, pool_size: int, strides: int | None = None, padding: Padding = "valid",
                 ceil_mode: bool = False, count_padding: bool = True) -> None:
    window = Geometry(pool_size, strides or pool_size, padding, ceil_mode)
    if isinstance(padding, str) and not ceil_mode:
        t.layer(_pooled(t, window))
    else:
        average_pool_size(t, window, count_padding)


@register("avgpool", kernel="pool_size", stride_defaults_to_kernel=True, check=check_pool, size=avgpool_size)
def avgpool(x, *, name: str, pool_size: PositiveInt, strides: PositiveInt | None = None,
            padding: Padding = "valid", ceil_mode: bool = False, count_padding: bool = True):
    """`count_padding` applies to an int padding; Keras's 'same' never counts its padding."""
    if isinstance(padding, str) and not ceil_mode:
        return layers.AveragePooling2D(pool_size, strides, padding, name=name)(x)
    return average_pool(x, name, Geometry(pool_size, strides or pool_size, padding, ceil_mode), count_padding)


def max_pool(x, name: str, window: Geometry):
    """-inf padding (none if there is nothing to pad), then a 'valid' max pool named `name`."""
    pads = _pads(x, window)
    if any(any(axis) for axis in pads):
        x = ConstantPadding2D(pads, value=float("-inf"), name=f"{name}_pad")(x)
    return layers.MaxPooling2D(window.kernel, window.stride, "valid", name=name)(x)


def average_pool(x, name: str, window: Geometry, count_padding: bool = True):
    """An average pool over explicit padding; the divisor counts the input cells, and the
    symmetric pad if `count_padding`, never ceil mode's overhang."""
    pads = _pads(x, window)
    pad = pads[0][0]  # the symmetric pad, the same on every side
    overhang = any(after > pad for _, after in pads)
    if not any(any(axis) for axis in pads):
        return layers.AveragePooling2D(window.kernel, window.stride, "valid", name=name)(x)
    if count_padding and not overhang:  # every window divides by kernel^2: Keras's own layers
        x = layers.ZeroPadding2D(pads, name=f"{name}_pad")(x)
        return layers.AveragePooling2D(window.kernel, window.stride, "valid", name=name)(x)
    counted = pad if count_padding else 0
    return PaddedAveragePooling2D(window.kernel, window.stride, pads, counted, name=name)(x)


def max_pool_size(t: Tally, window: Geometry) -> None:
    """`max_pool`'s layers. Max pooling's gradient needs its input and its output."""
    pads, pooled = _map_pads(t, window), _pooled(t, window)
    if any(any(axis) for axis in pads):
        t.layer(_padded(t, pads))
    t.layer(pooled)


def average_pool_size(t: Tally, window: Geometry, count_padding: bool = True) -> None:
    """`average_pool`'s layers. Average pooling's gradient needs only the shapes."""
    pads, pooled = _map_pads(t, window), _pooled(t, window)
    padded = any(any(axis) for axis in pads)
    uniform = count_padding and not any(after > pads[0][0] for _, after in pads)
    if padded and uniform:
        t.layer(_padded(t, pads), kept=0)
    # PaddedAveragePooling2D divides its means by the counted cells': the division's gradient keeps the means.
    t.layer(pooled, kept=2 if padded and not uniform else 1)


def _pooled(t: Tally, window: Geometry) -> tuple[int, int, int]:
    height, width, channels = t.feature_map()
    return window.output_size(height), window.output_size(width), channels


def _padded(t: Tally, pads) -> tuple[int, int, int]:
    height, width, channels = t.feature_map()
    (top, bottom), (left, right) = pads
    return height + top + bottom, width + left + right, channels


def _map_pads(t: Tally, window: Geometry) -> tuple[tuple[int, int], tuple[int, int]]:
    height, width, _ = t.feature_map()
    return window.pads(height), window.pads(width)


def _pads(x, window: Geometry) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)) for a map of static size x.shape[1:3]."""
    height, width = x.shape[1:3]
    return window.pads(height), window.pads(width)


@keras.saving.register_keras_serializable(package="builders")
class ConstantPadding2D(layers.Layer):
    """Pads height and width with a constant; ZeroPadding2D can only pad zeros.

    `padding` is ((top, bottom), (left, right)). Max pools pad -inf, as torch's max_pool2d and
    Caffe's MAX pooling treat the padding (a padded cell never wins). Written with keras.ops, so
    it runs on every backend.
    """

    def __init__(self, padding, value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.padding = tuple(tuple(int(cells) for cells in axis) for axis in padding)
        self.value = float(value)

    def call(self, inputs):
        return ops.pad(inputs, [[0, 0], *self.padding, [0, 0]], constant_values=self.value)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        (top, bottom), (left, right) = self.padding
        return batch, height + top + bottom, width + left + right, channels

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "value": self.value}


@keras.saving.register_keras_serializable(package="builders")
class PaddedAveragePooling2D(layers.Layer):
    """Average pooling over zero padding whose divisor is the number of counted cells per window.

    The input is padded by `padding` ((top, bottom), (left, right)); the input cells and the first
    `counted` cells of padding on every side count, the rest (ceil mode's overhang, or all of the
    padding without count_padding) do not, as in torch's avg_pool2d and Caffe's AVE pooling. The
    mean over the padded input divided by the mean of the counted-cells mask is sum / count.
    """

    def __init__(self, pool_size, strides, padding, counted=0, **kwargs):
        super().__init__(**kwargs)
        # Tuples, as Keras's pooling layers hold them: receptive_field.py reads pool_size[0].
        self.pool_size = (int(pool_size),) * 2
        self.strides = (int(strides),) * 2
        self.padding = tuple(tuple(int(cells) for cells in axis) for axis in padding)
        self.counted = int(counted)

    def call(self, inputs):
        height, width = inputs.shape[1:3]
        padded = ops.pad(inputs, [[0, 0], *self.padding, [0, 0]])
        counted = self.counted
        # 1 where a cell counts (the input, and `counted` cells of pad on each side), 0 elsewhere.
        mask = ops.ones((1, height + 2 * counted, width + 2 * counted, 1), dtype=inputs.dtype)
        uncounted = [[before - counted, after - counted] for before, after in self.padding]
        mask = ops.pad(mask, [[0, 0], *uncounted, [0, 0]])
        means = ops.average_pool(padded, self.pool_size, self.strides, "valid")
        return means / ops.average_pool(mask, self.pool_size, self.strides, "valid")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        (top, bottom), (left, right) = self.padding
        size, stride = self.pool_size[0], self.strides[0]
        return (batch, (height + top + bottom - size) // stride + 1,
                (width + left + right - size) // stride + 1, channels)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size[0], "strides": self.strides[0],
                "padding": self.padding, "counted": self.counted}
