"""What one output unit sees: the receptive field and the jump of a row's output, in input pixels.

The classic recurrence (Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural
Networks", Distill 2019): from r = 1, j = 1 at the input, a window of k pixels (a convolution or a
pooling) stepping by s turns (r, j) into

    r_out = r_in + (k - 1) * j_in        j_out = j_in * s

r is the side of the input square one unit depends on; j (the jump, or effective stride) is how
many input pixels apart two neighbouring units are. Kernels are square in the vocabulary, so one
number per row.

Padding moves the square, not its size. Where it lies is the centre of unit (0, 0)'s square, in
input pixels (y, x); from c = (0, 0) at the input, a window of k pixels with pad_before turns it into

    c_out = c_in + ((k - 1) / 2 - pad_before) * j_in

(pad_before: a pad layer's top and left, or what Keras's "same" puts there: the smaller half of
the total, which stride 2 makes asymmetric). Unit (y, x) of a map is centred at c + (y, x) * j:
`python -m runner.visualize` crops its top images there (Zeiler & Fergus 2014, Figure 2).

It is computed from the layers a row made, as its parameters and MACs are, so a composite or new
block needs no rule of its own:

* branches meet in a Concatenate or an Add, and the merged map sees what its widest branch sees:
  inception's 5x5 branch (its 3x3-pool-then-1x1 branch sees less); a residual block's
  convolutions, never its shortcut (identity or 1x1), so the shortcut does not enlarge it;
* a layer without a spatial map (global average pooling, flatten, a dense layer after them, an
  auxiliary classifier's logits) depends on every unit of the last map: it sees the whole input.
  Its field is None, "global", rather than a number of pixels (r + (n - 1) * j would count the
  padding, and a non-square input has no one size); its jump is None too.
"""

from collections.abc import Sequence

import keras
from keras import layers

from builders.pooling import ConstantPadding2D, PaddedAveragePooling2D

# (receptive field, jump, centre of unit (0, 0) as (y, x) in input pixels) of a tensor; None: no
# spatial map left, the whole input.
Field = tuple[int, int, tuple[float, float]] | None

INPUT: Field = (1, 1, (0.0, 0.0))
PADS = (layers.ZeroPadding2D, ConstantPadding2D)  # .padding: ((top, bottom), (left, right))
WINDOWS = {
    layers.Conv2D: ("kernel_size", "strides"),
    layers.MaxPooling2D: ("pool_size", "strides"),
    layers.AveragePooling2D: ("pool_size", "strides"),
    PaddedAveragePooling2D: ("pool_size", "strides"),  # pads inside itself: the window is what counts
}


def of_layers(row_layers: Sequence[keras.layers.Layer], inputs, field: Field) -> Field:
    """The field of the last layer's output, given the row's input tensor and its field.

    `row_layers` are the layers one row made, in the order of the graph (each depends only on
    the row's input and on layers before it), each called once.
    """
    fields = of_tensors(row_layers, inputs, field)
    return fields[id(row_layers[-1].output)] if row_layers else field


def of_tensors(graph_layers: Sequence[keras.layers.Layer], inputs, field: Field) -> dict[int, Field]:
    """The field of every layer's output (by the tensor's id), given the first one's input and its field.

    `graph_layers` in the graph's order: one row's, or a whole model's without its input layer.
    """
    fields = {id(inputs): field}
    for layer in graph_layers:
        sources = [fields[id(tensor)] for tensor in _as_list(layer.input)]
        fields[id(layer.output)] = _through(layer, sources)
    return fields


def _through(layer, sources: list[Field]) -> Field:
    if len(layer.output.shape) != 4 or None in sources:
        return None
    window = next((names for kind, names in WINDOWS.items() if isinstance(layer, kind)), None)
    if window:
        (r, j, centre), = sources
        size_argument, stride_argument = window
        # Dilation spreads a kernel over k_eff = d*(k-1)+1 pixels; no block of ours uses it.
        dilation = getattr(layer, "dilation_rate", (1,))[0]
        kernel = dilation * (getattr(layer, size_argument)[0] - 1) + 1
        pads = _pads_before(layer, kernel, getattr(layer, stride_argument)[0])
        centre = tuple(c + ((kernel - 1) / 2 - pad) * j for c, pad in zip(centre, pads))
        return r + (kernel - 1) * j, j * getattr(layer, stride_argument)[0], centre
    if isinstance(layer, PADS):
        (r, j, centre), = sources
        return r, j, tuple(c - before * j for c, (before, _) in zip(centre, layer.padding))
    # Any other layer keeps the positions: pointwise ones (batch norm, activations, LRN, dropout,
    # a dense layer on a map), and the merges of branches (Add, Concatenate), which see what the
    # widest branch sees (the branches of our blocks are centred alike).
    return max(sources, key=lambda source: source[:2])


def _pads_before(layer, kernel: int, stride: int) -> tuple[int, int]:
    """The (top, left) padding a window layer adds itself."""
    if isinstance(layer, PaddedAveragePooling2D):
        return layer.padding[0][0], layer.padding[1][0]
    if layer.padding != "same":
        return 0, 0
    # Keras (TensorFlow) "same": total = (out - 1) * s + k - n, the smaller half before.
    return tuple(max((size_out - 1) * stride + kernel - size_in, 0) // 2
                 for size_in, size_out in zip(layer.input.shape[1:3], layer.output.shape[1:3]))


def _as_list(tensors) -> list:
    return list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]
