"""Zeiler & Fergus's deconvnet (2014, "Visualizing and Understanding Convolutional Networks", Section
2.1, "Unpooling, Rectification, Filtering"): a unit's activation projected back to the input pixels.

It is backpropagation with one rule changed, so TensorFlow's own gradients do the rest:
* unpooling: a max pool's gradient sends each pooled value to the cell that won its window, the
  switch recorded on the way up. builders' padded and ceil-mode pools pad with -inf before a 'valid'
  pool, so a padded cell never wins and the pad's gradient drops the padded cells (tests pin this);
* rectification: at every ReLU the reconstruction passes as relu(signal), whatever the forward
  activation was. This is the one difference from the gradient (which masks by [x > 0]) and from
  guided backpropagation (which masks by both, guided.py);
* filtering: a convolution's gradient is the transposed filter (the bias plays no part).

The projection starts at the unit's activation, all other activations of the map zeroed (Section
2.1). What the paper's ReLU nets lack, this module has to decide:
* LRN passes the reconstruction down unchanged: ZF's deconvnet has no normalisation on the way down;
* batch norm in inference mode is a fixed affine map per channel and goes back as its gradient (a
  per-channel scale); ZF had none;
* other element-wise activations (LeNet's tanh, sigmoid) get the ReLU's rule, relu(signal) and no
  derivative: the deconvnet looks at nothing of the forward pass but the switches. ZF define it for
  ReLUs only, so `caveats` says so where it happened.
"""

import collections

import keras
import numpy as np
import tensorflow as tf

from builders.layers import LocalResponseNormalization
from runner.visualize import guided


def rectified(signal: tf.Tensor, backprop) -> tf.Tensor:
    """ZF's rectification of the reconstruction: relu(signal), with no mask from the forward pass."""
    return tf.nn.relu(signal)


def unchanged(signal: tf.Tensor, backprop) -> tf.Tensor:
    """The reconstruction passes as it came: ZF's deconvnet inverts no normalisation."""
    return signal


UNCHANGED_LAYERS = ((LocalResponseNormalization, "lrn", unchanged),)


def projections(probe: keras.Model, images: np.ndarray, channel: int) -> tuple[np.ndarray, collections.Counter]:
    """For each image, the deconvnet projection to its pixels of the unit where `channel` of probe's
    output peaks in it (one position, the first on ties), shape of `images`; and what was swapped
    (e.g. Counter({'relu': 5, 'lrn': 2})). The images do not interact (inference mode)."""
    with guided.backward_rules(probe, rectified, UNCHANGED_LAYERS) as counts:
        return guided.input_gradients(probe, images, channel, from_activation=True), counts


def caveats(counts: collections.Counter) -> list[str]:
    """Sentences for a figure's notes: where the projection of a model with these swaps is more than
    the paper's deconvnet."""
    said = []
    others = sorted(set(counts) - {"relu", "lrn"})
    if others:
        said.append(f"deconvnet: Zeiler & Fergus define it for ReLUs; {', '.join(others)} got the ReLU's "
                    "rule (relu of the reconstruction, without the activation's derivative)")
    if counts["lrn"]:
        said.append(f"deconvnet: {counts['lrn']} LRN layer(s) passed the reconstruction down unchanged, "
                    "as the paper's deconvnet has no normalisation")
    return said
