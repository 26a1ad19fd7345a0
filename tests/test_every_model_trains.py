"""Every file in conf/model/ takes a real training step, at the smallest input its architecture allows.

The step runs eagerly: tracing it into a graph costs more than running it once (ResNet-50: 14 s
traced, 3 s eager, the same loss), and every block family trains traced elsewhere: LeNet, AlexNet,
ZFNet, VGG-16, GoogLeNet and ResNet-50 in experiment=classics (test_experiments.py), ResNet-18's
basic blocks in test_train.py.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from helpers import MODEL_NAMES, compose
from runner.session.parts import prepare
from runner.training import loop

# AlexNet and ZFNet need 128 pixels (64 collapses before pool5). Any other model: 64 (GoogLeNet's
# auxiliary heads then pool 4a's 4x4 map in one ceil-mode window of their 5x5 pool, as Caffe does).
REDUCED_SIZE = {"alexnet": 128, "alexnet_grouped": 128, "zfnet": 128, "lenet": 32}


# ResNet-101/152 take about 10 s each even eagerly on two CPU cores, and share the bottleneck block
# with ResNet-50: they run with `pytest -m deep`.
DEEP = {"resnet101", "resnet152"}


# tf.data's functions stay traced, and TensorFlow warns so once per pipeline.
pytestmark = pytest.mark.filterwarnings("ignore:Even though the `tf.config.experimental_run_functions_eagerly`")


@pytest.fixture(autouse=True, scope="module")
def eager_steps():
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


@pytest.mark.e2e
@pytest.mark.parametrize("model", [pytest.param(name, marks=pytest.mark.deep) if name in DEEP else name
                                   for name in MODEL_NAMES])
def test_model_trains_for_a_step(model):
    size = REDUCED_SIZE.get(model, 64)
    channels = compose(f"model={model}").model.input_shape[2]
    cfg = compose(f"model={model}", "data=synthetic", f"model.input_shape=[{size},{size},{channels}]",
                  "trainer.batch_size=4", "trainer.epochs=1", "trainer.steps_per_epoch=1",
                  "data.train_size=8", "data.val_size=4", "trainer.jit_compile=false")
    session = prepare(cfg)
    model_ = session.model
    before = [weight.numpy().copy() for weight in model_.trainable_weights]
    history = loop.fit(session, loop.EpochHooks([])).history
    # Only the training loss: one step does not make deep nets' batch-norm statistics usable for inference.
    assert math.isfinite(history["loss"][0])
    changed = [not np.array_equal(old, new.numpy()) for old, new in zip(before, model_.trainable_weights)]
    assert all(changed), "every trainable weight takes a step"
