"""The test process's set-up: a private cache, two CPU devices, a fresh Keras session per test.
Shared helpers are modules of their own (helpers.py, apps.py, image_folders.py, sweeps.py)."""

import os
import tempfile

import keras
import pytest
import tensorflow as tf

# Downloads and file checks go to a cache of this session, not the user's (subprocesses inherit it).
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="classic-cnns-test-cache-")

# Two CPU devices, set before TensorFlow initialises, so a training run in this process can use a real
# 2-replica MirroredStrategy (trainer.cpu_replicas=2); the default strategy still uses one device.
CPU_REPLICAS = 2
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * CPU_REPLICAS)


@pytest.fixture(autouse=True)
def fresh_keras_session():
    """Keras's global state (layer names, the graph) reset after every test. Without the full garbage
    collection clear_session does by default, which costs about a second a test in a process holding
    TensorFlow; Python's own collector frees the rest."""
    yield
    keras.backend.clear_session(free_memory=False)


def pytest_collection_modifyitems(items):
    """The files with end-to-end (`slow`) tests first: pytest-xdist hands out whole files in this order
    (--dist loadfile), so the long ones start early instead of leaving one worker busy at the end."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
