"""GoogLeNet's blocks (Szegedy et al. 2014): the inception module, its naive form, the auxiliary classifier."""

import math

from keras import layers

from builders.arguments import Fraction, PositiveInt
from builders.geometry import Geometry
from builders.layers import conv, conv_size
from builders.pooling import average_pool, average_pool_size, max_pool, max_pool_size
from builders.registry import register
from builders.tally import Tally


def _unit(x, name: str, filters: int, kernel_size: int, batch_norm: bool):
    """One branch convolution, padded so that every branch keeps the map's size: 3x3 pad 1,
    5x5 pad 2 (BVLC's bvlc_googlenet/train_val.prototxt), a 1x1 none."""
    padding = kernel_size // 2 if kernel_size > 1 else "valid"
    return conv(x, name=name, filters=filters, kernel_size=kernel_size, padding=padding, batch_norm=batch_norm)


def _unit_size(t: Tally, filters: int, kernel_size: int, batch_norm: bool) -> Tally:
    conv_size(t, filters=filters, kernel_size=kernel_size, padding=kernel_size // 2 if kernel_size > 1 else "valid",
              batch_norm=batch_norm)
    return t


POOL_BRANCH = Geometry(3, 1, 1)


def _pool(x, name: str):
    """The pool branch: 3x3/1 max pool, pad 1 of -inf (the prototxt's, equal to Keras's 'same' here)."""
    return max_pool(x, f"{name}_pool", POOL_BRANCH)


def _joined(t: Tally, branches: list[Tally]) -> None:
    """Concatenate's output: the branches' maps, channels side by side."""
    height, width, _ = t.feature_map()
    t.join(branches, (height, width, sum(branch.shape[-1] for branch in branches)))


def inception_size(t: Tally, *, b1x1: int, b3x3_reduce: int, b3x3: int, b5x5_reduce: int, b5x5: int,
                   pool_proj: int, batch_norm: bool = False) -> None:
    pool = t.branch()
    max_pool_size(pool, POOL_BRANCH)
    _joined(t, [
        _unit_size(t.branch(), b1x1, 1, batch_norm),
        _unit_size(_unit_size(t.branch(), b3x3_reduce, 1, batch_norm), b3x3, 3, batch_norm),
        _unit_size(_unit_size(t.branch(), b5x5_reduce, 1, batch_norm), b5x5, 5, batch_norm),
        _unit_size(pool, pool_proj, 1, batch_norm),
    ])


@register("inception", size=inception_size)
def inception(
    x,
    *,
    name: str,
    b1x1: PositiveInt,
    b3x3_reduce: PositiveInt,
    b3x3: PositiveInt,
    b5x5_reduce: PositiveInt,
    b5x5: PositiveInt,
    pool_proj: PositiveInt,
    batch_norm: bool = False,
):
    """Figure 2b: four parallel branches concatenated; the arguments are Table 1's columns.

    The 1x1 reductions in front of the 3x3 and 5x5 convolutions are what keep the module cheap
    (compare `inception_naive`). Output channels: b1x1 + b3x3 + b5x5 + pool_proj.
    """

    def unit(tensor, suffix, filters, kernel_size):
        return _unit(tensor, f"{name}_{suffix}", filters, kernel_size, batch_norm)

    branch_1x1 = unit(x, "1x1", b1x1, 1)
    branch_3x3 = unit(unit(x, "3x3_reduce", b3x3_reduce, 1), "3x3", b3x3, 3)
    branch_5x5 = unit(unit(x, "5x5_reduce", b5x5_reduce, 1), "5x5", b5x5, 5)
    branch_pool = unit(_pool(x, name), "pool_proj", pool_proj, 1)
    return layers.Concatenate(name=f"{name}_concat")([branch_1x1, branch_3x3, branch_5x5, branch_pool])


def inception_naive_size(t: Tally, *, b1x1: int, b3x3: int, b5x5: int, batch_norm: bool = False) -> None:
    pool = t.branch()
    max_pool_size(pool, POOL_BRANCH)
    units = [_unit_size(t.branch(), filters, size, batch_norm) for size, filters in ((1, b1x1), (3, b3x3), (5, b5x5))]
    _joined(t, [*units, pool])


@register("inception_naive", size=inception_naive_size)
def inception_naive(
    x,
    *,
    name: str,
    b1x1: PositiveInt,
    b3x3: PositiveInt,
    b5x5: PositiveInt,
    batch_norm: bool = False,
):
    """Figure 2a, the naive module: 1x1, 3x3 and 5x5 convolutions and a 3x3/1 max pool, all
    straight on the input, concatenated. The lesson of the 1x1 reductions, by contrast.

    The 3x3 and 5x5 convolutions see every input channel, and the pool branch passes all of
    them on: output channels are b1x1 + b3x3 + b5x5 + the input's, so stacked modules grow
    wider and costlier stage by stage (Section 4). Not a trainable paper model; for comparison.
    """
    branches = [_unit(x, f"{name}_{size}x{size}", filters, size, batch_norm)
                for size, filters in ((1, b1x1), (3, b3x3), (5, b5x5))]
    return layers.Concatenate(name=f"{name}_concat")([*branches, _pool(x, name)])


def aux_classifier_size(t: Tally, *, units: int, pool_size: int = 5, strides: int = 3, filters: int = 128,
                        hidden_units: int = 1024, dropout: float = 0.7, ceil_mode: bool = False) -> None:
    average_pool_size(t, Geometry(pool_size, strides, "valid", ceil_mode))
    conv_size(t, filters=filters, kernel_size=1)
    t.layer((math.prod(t.shape),), kept=0)  # Flatten: a view
    t.layer((hidden_units,), t.shape[0] * hidden_units + hidden_units)
    t.layer(t.shape, kept=2)  # Dropout: the output and its mask
    t.layer((units,), hidden_units * units + units)


@register("aux_classifier", side_output=True, size=aux_classifier_size)
def aux_classifier(
    x,
    *,
    name: str,
    units: PositiveInt,
    pool_size: PositiveInt = 5,
    strides: PositiveInt = 3,
    filters: PositiveInt = 128,
    hidden_units: PositiveInt = 1024,
    dropout: Fraction = 0.7,
    ceil_mode: bool = False,
):
    """Section 5's side classifier on 4a and 4d: its logits are an extra model output.

    Average pool 5x5/3 (4x4 at 224 input), 1x1 conv 128 with ReLU, fully connected 1024 with
    ReLU, 70% dropout, linear classifier. `ceil_mode` pools as Caffe does (geometry.py): the same
    4x4 on 14x14, a last partial window on other sizes (its overhang does not count).
    """
    x = average_pool(x, f"{name}_pool", Geometry(pool_size, strides, "valid", ceil_mode))
    x = conv(x, name=f"{name}_proj", filters=filters, kernel_size=1)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(hidden_units, activation="relu", name=f"{name}_fc")(x)
    x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return layers.Dense(units, name=f"{name}_logits")(x)
