"""What a top row's units are ranked by: their peak response, before a saturating activation.

tanh and sigmoid flatten every strong response to the same value (LeNet's s4 reads 1.00 for every
top image), so ranking by them says nothing. Where the last non-linearity on the way to the row's
output saturates, it is taken off while the scores are computed: a unit's score is then its
pre-activation (for a pool after it, the pool of the pre-activations). ReLU keeps its order and its
scale, so ReLU networks (AlexNet, VGG, ResNet) are scored on their activations as they are.
"""

import contextlib
from collections.abc import Iterator

import keras

from builders.pooling import ConstantPadding2D, PaddedAveragePooling2D

SATURATING = {name: getattr(keras.activations, name) for name in ("tanh", "sigmoid", "hard_sigmoid", "softsign")
              if hasattr(keras.activations, name)}
# Layers that pass positions on without an activation of their own: the search goes through them.
PASS_THROUGH = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D, keras.layers.Dropout,
                keras.layers.ZeroPadding2D, ConstantPadding2D, PaddedAveragePooling2D)


@contextlib.contextmanager
def pre_activation(layer: keras.layers.Layer) -> Iterator[str | None]:
    """Inside the block the saturating activation nearest below `layer` (itself included) is the
    identity; yields what was taken off ("c3_tanh (tanh)"), or None when nothing saturates."""
    source = _activation_source(layer)
    name = _saturating_name(getattr(source, "activation", None))
    if name is None:
        yield None
        return
    original = source.activation
    source.activation = keras.activations.linear
    try:
        yield f"{source.name} ({name})"
    finally:
        source.activation = original


def scored_unit(probe: keras.Model) -> contextlib.AbstractContextManager[str | None]:
    """pre_activation at probe's output layer: inside it, probe's peak unit is the one the scan
    scores, rings and crops, and the one every projection starts from (tanh would tie them at 1.0)."""
    return pre_activation(probe.output._keras_history.operation)


def _activation_source(layer: keras.layers.Layer) -> keras.layers.Layer | None:
    """`layer`, or the first layer below it through pools, dropout and padding, that has an activation."""
    while not hasattr(layer, "activation"):
        if not isinstance(layer, PASS_THROUGH) or isinstance(layer.input, (list, tuple)):
            return None
        layer = layer.input._keras_history.operation
    return layer


def _saturating_name(activation) -> str | None:
    return next((name for name, function in SATURATING.items() if activation is function), None)
