"""What a run does by default on one GPU, tried on the CPU, two training steps of each block family:

* `xla`: trainer.jit_compile=true with trainer.steps_per_execution=2, in float32 (the GPU default is
  16 steps a call; 2 is the smallest count that loops inside the compiled call);
* `float16`: trainer.precision=mixed_float16, float16 with loss scaling, the default on Volta and Turing
  (runner.session.strategy.precision). The CPU computes float16 too, slowly but correctly; on a CPU
  runner/shell/gpu_notice.py only adds a note;
* both at once on LeNet, as a Volta or Turing GPU runs.

The inputs are the smallest each architecture takes (test_every_model_trains.py), two images a batch.
XLA compiles slowly on a CPU (two cores: GoogLeNet over a minute, ResNet-50 about half of one, float16
several times longer again), so XLA compiles the families whose layers include all the others', the deep
two with fewer rows of the same blocks (DEEP_XLA), and float16 trains every family whole.
"""

import functools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from builders.layers import LocalResponseNormalization
from helpers import compose
from runner.session.parts import prepare
from runner.training import loop
from test_every_model_trains import REDUCED_SIZE

# Most float16 steps run eagerly; tf.data's functions stay traced, and TensorFlow warns so once per pipeline.
pytestmark = pytest.mark.filterwarnings("ignore:Even though the `tf.config.experimental_run_functions_eagerly`")

MODES = {
    "xla": ("trainer.jit_compile=true", "trainer.steps_per_execution=2"),
    "float16": ("trainer.precision=mixed_float16", "trainer.jit_compile=false", "trainer.steps_per_execution=2"),
}

# One model of each block family, in float16, its steps run eagerly (tracing costs more than two steps),
# but grouped AlexNet's: eagerly, TensorFlow fails the float16 gradient of a grouped convolution on a CPU
# ("not supported on CPU"), while its traced steps run, as cuDNN's on a GPU do.
FAMILIES = ("lenet", "alexnet_grouped", "zfnet", "vgg11_lrn", "googlenet", "resnet18", "resnet50")
TRACED_IN_FLOAT16 = {"alexnet_grouped"}
# Under XLA, the families that hold every layer type of the others: ZFNet's and VGG's layers are
# AlexNet's (grouped: grouped convolutions under XLA), ResNet-18's basic blocks are ResNet-50's layers.
XLA_FAMILIES = ("lenet", "alexnet_grouped", "googlenet", "resnet50")

# Under XLA, rows left out of the deep two: ResNet-50 keeps one bottleneck of conv2 and one of conv3
# (projections at stride 1 and 2), GoogLeNet one inception module, 4a, and its auxiliary head.
DEEP_XLA = {
    "resnet50": ("model.blocks.2.repeat=1", "model.blocks.3.repeat=1", "conv4", "conv5"),
    "googlenet": ("inception_3a", "inception_3b", "inception_4b", "inception_4c", "inception_4d", "aux2",
                  "inception_4e", "pool4", "inception_5a", "inception_5b"),
}

# Keras's first loss scale, 2**15, makes float16 filter gradients overflow on these two-image batches
# (ResNet-50's reach 550 per unit of loss, from batch norms over 2x2 maps; float16 stops at
# 65504), so the loss scale optimizer skips the step and halves the scale, as in a GPU run's first steps,
# and two steps would train nothing. The test starts at 2**4, which no family's gradients overflow.
FIRST_LOSS_SCALE = 2.0**4
LossScaleOptimizer = keras.optimizers.LossScaleOptimizer  # the class, which first_loss_scale wraps


def config(model: str, mode: str, *more: str):
    size = REDUCED_SIZE.get(model, 64)
    channels = compose(f"model={model}").model.input_shape[2]
    rows = DEEP_XLA.get(model, ()) if mode == "xla" else ()
    overrides = [row for row in rows if "=" in row]
    cfg = compose(f"model={model}", "data=synthetic", f"model.input_shape=[{size},{size},{channels}]",
                  "trainer.batch_size=2", "trainer.epochs=1", "trainer.steps_per_epoch=2", "data.train_size=4",
                  "data.val_size=2", "schedule=constant", *MODES[mode], *overrides, *more)
    left_out = {row for row in rows if "=" not in row}
    if left_out:
        cfg.model.blocks = [row for row in cfg.model.blocks if row.name not in left_out]
    return cfg


@pytest.fixture(autouse=True)
def global_dtype_policy():
    """prepare() sets Keras's global policy: later tests in this process build in float32 again."""
    policy = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(policy)


@pytest.fixture
def eager_steps():
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


@pytest.fixture
def first_loss_scale(monkeypatch):
    monkeypatch.setattr(keras.optimizers, "LossScaleOptimizer",
                        functools.partial(LossScaleOptimizer, initial_scale=FIRST_LOSS_SCALE))


def train_two_steps(cfg):
    """The session, after two steps of loop.fit; asserts the loss is a number and every weight moved."""
    session = prepare(cfg)
    model = session.model
    before = [weight.numpy().copy() for weight in model.trainable_weights]
    history = loop.fit(session, loop.EpochHooks([])).history
    assert math.isfinite(history["loss"][0])
    still = [weight.path for old, weight in zip(before, model.trainable_weights) if np.array_equal(old, weight.numpy())]
    assert not still, f"weights that took no step: {still}"
    return session


@pytest.mark.e2e
@pytest.mark.parametrize("model", XLA_FAMILIES)
def test_two_steps_compiled_by_xla(model):
    session = train_two_steps(config(model, "xla"))
    assert session.part.resolved.jit_compile and session.training.steps_per_call == 2


@pytest.mark.e2e
@pytest.mark.parametrize("model", FAMILIES)
def test_two_steps_in_float16_with_loss_scaling(model, first_loss_scale, request):
    if model not in TRACED_IN_FLOAT16:
        request.getfixturevalue("eager_steps")
    assert_trained_in_float16(train_two_steps(config(model, "float16")))


@pytest.mark.e2e
def test_two_steps_as_on_volta(first_loss_scale):
    """All three together, traced, as a Volta or Turing GPU runs by default, on the smallest family."""
    session = train_two_steps(config("lenet", "float16", "trainer.jit_compile=true"))
    assert session.part.resolved.jit_compile and session.training.steps_per_call == 2
    assert_trained_in_float16(session)


def assert_trained_in_float16(session):
    optimizer = session.training.optimizer
    assert isinstance(optimizer, LossScaleOptimizer)
    # Its count of steps since the scale last changed: 2 when neither step overflowed and was skipped.
    assert int(optimizer.step_counter.numpy()) == 2 and float(optimizer.dynamic_scale.numpy()) == FIRST_LOSS_SCALE
    computing = [layer for layer in session.model.layers if layer.weights]
    assert {layer.compute_dtype for layer in computing} == {"float16"}
    assert {weight.dtype for weight in session.model.weights} == {"float32"}


def test_lrn_in_float16_normalises_activations_past_256():
    """AlexNet's LRN constants on activations of 300, whose squares float16 cannot hold: the float32
    outputs and gradients, to float16's precision."""
    activations = np.full((1, 2, 2, 8), 300.0, "float32")
    expected, expected_gradient = lrn_and_gradient(activations)
    keras.config.set_dtype_policy("mixed_float16")
    outputs, gradient = lrn_and_gradient(activations.astype("float16"))
    assert outputs.dtype == gradient.dtype == "float16"
    np.testing.assert_allclose(outputs, expected, rtol=1e-3)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-2, atol=1e-4)


def lrn_and_gradient(activations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    inputs = tf.constant(activations)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = LocalResponseNormalization(2, 2.0, 1e-4, 0.75)(inputs)
    return outputs.numpy(), tape.gradient(outputs, inputs).numpy()
