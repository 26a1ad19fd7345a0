"""Shared helpers: compose the real Hydra config and build models from it."""

import functools
import os
import pathlib
import tempfile

import hydra
import keras
import pytest
import tensorflow as tf

from runner import schema
from runner.training.model_report import describe

REPO = pathlib.Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
MODEL_NAMES = sorted(path.stem for path in (CONF / "model").glob("*.yaml"))

schema.register()

# Downloads and file checks go to a cache of this session, not the user's (subprocesses inherit it).
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="classic-cnns-test-cache-")

# Two CPU devices, set before TensorFlow initialises, so a training run in this process can use a real
# 2-replica MirroredStrategy (trainer.cpu_replicas=2); the default strategy still uses one device.
CPU_REPLICAS = 2
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * CPU_REPLICAS)


def compose(*overrides: str):
    with hydra.initialize_config_dir(str(CONF), version_base="1.3"):
        return hydra.compose("config", overrides=list(overrides))


@functools.lru_cache(maxsize=None)
def zoo_report(model: str, data: str = "imagenet", *overrides: str):
    """The report of a zoo model (cached: the 224 VGGs take seconds to build)."""
    result = describe(compose(f"model={model}", f"data={data}", *overrides))
    keras.backend.clear_session()
    return result


def row(report, name: str):
    matches = [layer for layer in report.layers if layer.name == name]
    assert matches, f"{report.model} has no row {name!r}"
    return matches[0]


@pytest.fixture(autouse=True)
def fresh_keras_session():
    yield
    keras.backend.clear_session()
