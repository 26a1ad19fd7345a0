"""Guided backpropagation (Springenberg et al. 2015, "Striving for Simplicity", Section 3.4), and the
swap of backward rules at a network's activations it shares with the deconvnet (deconvnet.py).

Guided backpropagation is the gradient of a unit's activation with respect to the input image,
except that at every ReLU the signal going back is also rectified: grad_in = grad_out * [x > 0] *
[grad_out > 0]. The first factor is ordinary backpropagation, the second is Zeiler & Fergus's
deconvnet; together they keep only what excites the unit, which gives sharper pictures than either.

The models use ReLU in three forms: a Conv2D or Dense with `activation="relu"`, an Activation layer
(the conv rows' `*_relu`, the residual blocks' `*_out`) and possibly keras.layers.ReLU. For the
gradient only, each of them is swapped for a function with a backward rule of its own and put back
afterwards. Other element-wise activations get the same rule with their own derivative, grad_out
rectified and multiplied by f'(x): LeNet's tanh is the case in the zoo; the figure's title says which
were guided.
"""

import collections
import contextlib
from collections.abc import Callable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

ACTIVATIONS = {
    name: getattr(keras.activations, name)
    for name in ("relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "tanh", "sigmoid",
                 "hard_sigmoid", "softplus")
    if hasattr(keras.activations, name)
}

# rule(signal, backprop) -> the signal passed on down. `signal` is what comes down to the function's
# output; backprop(s) is the function's own gradient applied to s (its vector-Jacobian product at x).
BackwardRule = Callable[[tf.Tensor, Callable[[tf.Tensor], tf.Tensor]], tf.Tensor]
# (layer class, name counted, rule): layers whose whole call gets the rule.
LayerRule = tuple[type, str, BackwardRule]


def guided_rule(signal: tf.Tensor, backprop: Callable[[tf.Tensor], tf.Tensor]) -> tf.Tensor:
    """relu(signal) * activation'(x): for a ReLU, signal * [signal > 0] * [x > 0]."""
    return backprop(tf.nn.relu(signal))


def with_backward(function: Callable, rule: BackwardRule) -> Callable:
    """`function` as it is going forward; going back, `rule` decides what passes."""

    @tf.custom_gradient
    def forward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = function(x)

        def backward(signal):
            return rule(signal, lambda s: tape.gradient(y, x, output_gradients=s))

        return y, backward

    return forward


@contextlib.contextmanager
def backward_rules(model: keras.Model, at_activations: BackwardRule,
                   at_layers: Sequence[LayerRule] = ()) -> Iterator[collections.Counter]:
    """Inside the block every element-wise activation of `model` (fused, an Activation layer or a
    keras.layers.ReLU) goes back by `at_activations`, and every layer of a class in `at_layers` by its
    rule; yields how many of each kind were swapped (e.g. Counter({'relu': 17})). Everything is put
    back on leaving, whatever raised."""
    calls = ((keras.layers.ReLU, "relu", at_activations), *at_layers)
    swapped, counts = [], collections.Counter()
    try:
        for layer in _all_layers(model):
            name = _swap(layer, calls, at_activations, swapped)
            if name is not None:
                counts[name] += 1
        yield counts
    finally:
        for layer, attribute, original in reversed(swapped):
            if attribute == "call":
                del layer.call  # the class's method again
            else:
                layer.activation = original


@contextlib.contextmanager
def guided_activations(model: keras.Model) -> Iterator[collections.Counter]:
    """Inside the block every element-wise activation of `model` has the guided gradient."""
    with backward_rules(model, guided_rule) as counts:
        yield counts


def input_gradients(probe: keras.Model, images: np.ndarray, channel: int, *,
                    from_activation: bool = False) -> np.ndarray:
    """d(peak unit of `channel` of probe's output) / d(images), one image at a time (batch norm runs
    in inference mode, so the images do not interact). The peak unit is the one position where the
    channel is largest in that image (the first on ties), so every method projects the same unit.
    With `from_activation` the signal starts at the unit's activation instead of 1, as Zeiler &
    Fergus's deconvnet starts from the feature map with all other activations zeroed (Section 2.1)."""
    x = tf.convert_to_tensor(images, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        maps = probe(x, training=False)
        values = tf.reshape(maps[..., channel], [tf.shape(maps)[0], -1])
        peaks = tf.gather(values, tf.argmax(values, axis=1), batch_dims=1)
    start = tf.stop_gradient(peaks) if from_activation else tf.ones_like(peaks)
    return tape.gradient(peaks, x, output_gradients=start).numpy()


def guided_gradients(probe: keras.Model, images: np.ndarray, channel: int) -> tuple[np.ndarray, collections.Counter]:
    """Guided backpropagation of `channel` of probe's output to the images; and the activations guided."""
    with guided_activations(probe) as counts:
        return input_gradients(probe, images, channel), counts


def _swap(layer: keras.layers.Layer, calls: Sequence[LayerRule], at_activations: BackwardRule,
          swapped: list) -> str | None:
    """Swaps `layer`'s call or activation for one with its backward rule, noting it in `swapped`;
    the name it counts as, or None when the layer has nothing to swap."""
    for kind, name, rule in calls:
        if isinstance(layer, kind):
            layer.call = with_backward(layer.__class__.call.__get__(layer), rule)
            swapped.append((layer, "call", None))
            return name
    name = _activation_name(getattr(layer, "activation", None))
    if name is not None:
        swapped.append((layer, "activation", layer.activation))
        layer.activation = with_backward(layer.activation, at_activations)
    return name


def _activation_name(activation) -> str | None:
    for name, function in ACTIVATIONS.items():
        if activation is function:
            return name
    return None


def _all_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer
