"""Batch norm through TensorFlow's fused kernel (runner/training/fused_norm.py) against Keras's own
BatchNormalization call, the reference: the same outputs, gradients and moving statistics, in training
and in inference, in float32 and mixed bfloat16; frozen layers, masks and other ranks as Keras does them."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from runner.training.fused_norm import fuse_batch_norms


def twin_models(shape, **options):
    """Two copies of conv -> batch norm with the same weights; the second fused."""
    def build():
        inputs = keras.Input(shape)
        x = keras.layers.Conv2D(6, 3, padding="same", use_bias=False)(inputs) if len(shape) == 3 else inputs
        return keras.Model(inputs, keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, **options)(x))
    reference, fused = build(), build()
    rng = np.random.default_rng(0)
    values = [rng.normal(1.0, 0.5, weight.shape).astype("float32") for weight in reference.get_weights()]
    values = [np.abs(value) if "variance" in weight.path else value
              for value, weight in zip(values, reference.weights)]
    reference.set_weights(values)
    fused.set_weights(values)
    return reference, fused


def step(model, images, training):
    """Outputs and gradients of a loss that weighs every output differently (a per-channel weight alone
    would have a zero gradient in training: batch norm takes each channel's mean out)."""
    with tf.GradientTape() as tape:
        outputs = model(images, training=training)
        weights = tf.constant(np.random.default_rng(5).normal(0, 1, outputs.shape), tf.float32)
        loss = tf.reduce_sum(tf.cast(outputs, tf.float32) * weights)
    return outputs, tape.gradient(loss, model.trainable_variables)


@pytest.fixture(params=["float32", "mixed_bfloat16"])
def policy(request):
    keras.config.set_dtype_policy(request.param)
    yield request.param
    keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("training", [True, False])
def test_fused_batch_norm_computes_what_keras_computes(policy, training):
    reference, fused = twin_models((9, 7, 3))
    assert fuse_batch_norms(fused) == 1 and fuse_batch_norms(keras.Sequential([keras.layers.Dense(2)])) == 0
    images = tf.constant(np.random.default_rng(1).normal(3.0, 2.0, (4, 9, 7, 3)), tf.float32)
    tolerance = 1e-5 if policy == "float32" else 2e-2  # bfloat16 keeps 8 bits of mantissa
    for _ in range(2):  # the second step starts from the moving statistics the first updated
        expected, expected_gradients = step(reference, images, training)
        outputs, gradients = step(fused, images, training)
        assert outputs.dtype == expected.dtype
        np.testing.assert_allclose(np.float32(outputs), np.float32(expected), rtol=tolerance, atol=tolerance)
        for mine, theirs in zip(gradients, expected_gradients):
            np.testing.assert_allclose(np.float32(mine), np.float32(theirs), rtol=tolerance, atol=tolerance * 10)
        for mine, theirs in zip(fused.non_trainable_weights, reference.non_trainable_weights):  # moving mean, variance
            np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)
    moved = not np.allclose(fused.layers[-1].moving_mean.numpy(), twin_models((9, 7, 3))[0].layers[-1].moving_mean)
    assert moved == training  # training updates the moving statistics; inference leaves them


def test_a_frozen_batch_norm_normalises_with_its_moving_statistics():
    reference, fused = twin_models((5, 5, 2))
    reference.layers[-1].trainable = fused.layers[-1].trainable = False
    fuse_batch_norms(fused)
    images = tf.constant(np.random.default_rng(2).normal(0, 1, (3, 5, 5, 2)), tf.float32)
    np.testing.assert_allclose(fused(images, training=True), reference(images, training=True), rtol=1e-5, atol=1e-5)


def test_what_the_fused_kernel_does_not_cover_is_left_to_keras():
    flat_reference, flat = twin_models((4,))  # 2-D input: the fused kernel takes 4-D only
    assert fuse_batch_norms(flat) == 1
    features = tf.constant(np.random.default_rng(3).normal(0, 1, (5, 4)), tf.float32)
    np.testing.assert_allclose(flat(features, training=True), flat_reference(features, training=True), rtol=1e-6)
    assert fuse_batch_norms(twin_models((5, 5, 2), axis=1)[1]) == 0  # channels first
    assert fuse_batch_norms(twin_models((5, 5, 2), synchronized=True)[1]) == 0


def test_a_fused_model_saves_as_keras_layers_and_loads_the_same(tmp_path):
    reference, fused = twin_models((6, 6, 3))
    fuse_batch_norms(fused)
    fused.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(loaded.layers[-1]) is keras.layers.BatchNormalization
    images = tf.constant(np.random.default_rng(4).normal(0, 1, (2, 6, 6, 3)), tf.float32)
    np.testing.assert_allclose(loaded(images), fused(images), rtol=1e-5, atol=1e-5)
