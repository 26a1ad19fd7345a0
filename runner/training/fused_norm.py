"""Batch normalisation through TensorFlow's fused kernel, for the models this process trains and runs.

Keras 3's BatchNormalization is written with keras.ops: moments in two passes, then the normalisation,
and autodiff's backward through each of them, about ten passes over the whole activation each step,
in float32 even under mixed bfloat16 (the activation is cast up and back down). TensorFlow's
FusedBatchNormV3 does each direction in one kernel (oneDNN's on a CPU, cuDNN's on a GPU) and reads
bfloat16 as it is. Keras 3 has no fused option (Keras 2's `fused=True` is gone), so it is called here.

The layers stay Keras's: their weights, config and saved form are unchanged, so a saved model loads
anywhere; only the `call` of this process's instances is replaced, and only for what the fused kernel
covers (4-D channels-last input, no mask, no renorm, not synchronised); anything else goes to Keras's
own call. The moving statistics update as Keras's do (the biased batch variance, at `momentum`), so
training computes the same thing up to float rounding.
"""

import functools

import keras
import tensorflow as tf


def fuse_batch_norms(model: keras.Model) -> int:
    """Route each BatchNormalization of `model` the fused kernel covers through it; how many were."""
    if keras.backend.backend() != "tensorflow":
        return 0
    fused = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization) and _covered(layer):
            layer.call = functools.partial(_fused_call, layer, layer.call)
            fused += 1
    return fused


def _covered(layer: keras.layers.BatchNormalization) -> bool:
    axis = layer.axis if isinstance(layer.axis, int) else None
    return axis in (-1, 3) and not layer.renorm and not layer.synchronized


def _fused_call(layer, keras_call, inputs, training=None, mask=None):
    if mask is not None or len(inputs.shape) != 4:
        return keras_call(inputs, training=training, mask=mask)
    channels = inputs.shape[-1]
    scale = layer.gamma.value if layer.scale else tf.ones([channels])
    offset = layer.beta.value if layer.center else tf.zeros([channels])
    if training and layer.trainable:
        outputs, mean, variance = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=scale, offset=offset, mean=tf.zeros([0]), variance=tf.zeros([0]),
            epsilon=layer.epsilon, exponential_avg_factor=1.0, data_format="NHWC", is_training=True)[:3]
        count = tf.cast(tf.size(inputs) // channels, tf.float32)
        biased = variance * (count - 1.0) / count  # the kernel returns Bessel's estimate; Keras keeps the biased one
        momentum = layer.momentum
        layer.moving_mean.assign(layer.moving_mean * momentum + mean * (1.0 - momentum))
        layer.moving_variance.assign(layer.moving_variance * momentum + biased * (1.0 - momentum))
    else:
        outputs = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=scale, offset=offset, mean=layer.moving_mean.value, variance=layer.moving_variance.value,
            epsilon=layer.epsilon, data_format="NHWC", is_training=False)[0]
    return tf.cast(outputs, layer.compute_dtype)
