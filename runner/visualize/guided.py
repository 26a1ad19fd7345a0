"""Guided backpropagation (Springenberg et al. 2015, "Striving for Simplicity", Section 3.4).

The gradient of a unit's activation with respect to the input image, except that at every ReLU the
signal going back is also rectified: grad_in = grad_out * [x > 0] * [grad_out > 0]. The first factor
is ordinary backpropagation, the second is Zeiler & Fergus's deconvnet; together they keep only what
excites the unit, which gives sharper pictures than either.

The models use ReLU in three forms: a Conv2D or Dense with `activation="relu"`, an Activation layer
(the conv rows' `*_relu`, the residual blocks' `*_out`) and possibly keras.layers.ReLU. For the
gradient only, each of them is swapped for a function with a guided gradient and put back afterwards.
Other element-wise activations get the same rule with their own derivative, grad_out rectified and
multiplied by f'(x): LeNet's tanh is the case in the zoo; the figure's title says which were guided.
"""

import collections
import contextlib
from typing import Callable, Iterator

import keras
import numpy as np
import tensorflow as tf

GUIDED_ACTIVATIONS = {
    name: getattr(keras.activations, name)
    for name in ("relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "tanh", "sigmoid",
                 "hard_sigmoid", "softplus")
    if hasattr(keras.activations, name)
}


def guided(activation: Callable) -> Callable:
    """`activation` with the guided gradient: relu(grad_out) * activation'(x)."""

    @tf.custom_gradient
    def forward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = activation(x)

        def backward(grad_out):
            return tape.gradient(y, x, output_gradients=tf.nn.relu(grad_out))

        return y, backward

    return forward


@contextlib.contextmanager
def guided_activations(model: keras.Model) -> Iterator[collections.Counter]:
    """Inside the block every element-wise activation of `model` has the guided gradient; yields how
    many of each kind (e.g. Counter({'relu': 17}))."""
    swapped, counts = [], collections.Counter()
    try:
        for layer in _all_layers(model):
            if isinstance(layer, keras.layers.ReLU):
                layer.call = guided(layer.__class__.call.__get__(layer))
                swapped.append((layer, "call", None))
                counts["relu"] += 1
                continue
            name = _activation_name(getattr(layer, "activation", None))
            if name is not None:
                swapped.append((layer, "activation", layer.activation))
                layer.activation = guided(layer.activation)
                counts[name] += 1
        yield counts
    finally:
        for layer, attribute, original in reversed(swapped):
            if attribute == "call":
                del layer.call  # the class's method again
            else:
                layer.activation = original


def input_gradients(probe: keras.Model, images: np.ndarray, channel: int) -> np.ndarray:
    """d(max over positions of `channel` of probe's output) / d(images), one image at a time
    (batch norm runs in inference mode, so the images do not interact)."""
    x = tf.convert_to_tensor(images, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        maps = probe(x, training=False)
        score = tf.reduce_sum(tf.reduce_max(maps[..., channel], axis=[1, 2]))
    return tape.gradient(score, x).numpy()


def guided_gradients(probe: keras.Model, images: np.ndarray, channel: int) -> tuple[np.ndarray, collections.Counter]:
    """Guided backpropagation of `channel` of probe's output to the images; and the activations guided."""
    with guided_activations(probe) as counts:
        return input_gradients(probe, images, channel), counts


def _activation_name(activation) -> str | None:
    for name, function in GUIDED_ACTIVATIONS.items():
        if activation is function:
            return name
    return None


def _all_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer
