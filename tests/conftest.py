"""The test process's set-up: a private cache, two CPU devices, a fresh Keras session per test.
Shared helpers are modules of their own (helpers.py, apps.py, image_folders.py, sweeps.py)."""

import collections
import gc
import math
import os
import tempfile

# One thread per op in every TensorFlow of the session (this process and those the tests start, which
# inherit it): two pytest-xdist workers and the processes their tests start keep both cores busy already,
# and TensorFlow's pools, oversubscribed, spin waiting for work (measured on 2 cores: a seventh less wall
# time for the same tests). The commands themselves keep TensorFlow's default, a thread per core.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

from runner.shell.logs import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()  # before Keras imports it: without the lines it writes as it loads, as the commands do

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Downloads and file checks go to a cache of this session, not the user's (subprocesses inherit it).
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="classic-cnns-test-cache-")

# Two CPU devices, set before TensorFlow initialises, so a training run in this process can use a real
# 2-replica MirroredStrategy (trainer.cpu_replicas=2); the default strategy still uses one device.
CPU_REPLICAS = 2
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * CPU_REPLICAS)


@pytest.fixture(autouse=True)
def fresh_keras_session():
    """Keras's global state (layer names, the graph) reset after every test, and what the test left
    collected, then frozen (gc.freeze): a full collection walks every object the process holds, over a
    second in a test process after a few hundred tests, and the apps collect at each command's end
    (their Keras session's clear); frozen, the objects of earlier tests are not walked again."""
    yield
    keras.backend.clear_session(free_memory=False)
    gc.collect()
    gc.freeze()


# Seconds each test file took in the last run that ran it, in pytest's cache (.pytest_cache).
FILE_SECONDS = "classic-cnns/file-seconds"
_this_run = collections.Counter()


def pytest_collection_modifyitems(config, items):
    """The longest files first: pytest-xdist hands out whole files in this order (--dist loadfile with
    --no-loadscope-reorder, pyproject.toml), so the long ones start early instead of leaving one worker
    busy at the end while the other waits. How long is what the last run measured; a file it did not
    measure (a fresh checkout, a new file) goes first if it has end-to-end (`e2e`) tests, else last."""
    cache = getattr(config, "cache", None)  # None with -p no:cacheprovider
    measured = cache.get(FILE_SECONDS, {}) if cache else {}
    e2e_files = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("e2e")}

    def seconds(item):
        file = item.nodeid.split("::")[0]
        return measured.get(file, math.inf if file in e2e_files else 0.0)

    items.sort(key=seconds, reverse=True)  # stable: a file's tests keep their order


def pytest_runtest_logreport(report):
    """Set-up, call and tear-down of every test, added up by file (under xdist, in the controller)."""
    _this_run.update({report.nodeid.split("::")[0]: report.duration})


def pytest_sessionfinish(session):
    cache = getattr(session.config, "cache", None)
    if cache is None or hasattr(session.config, "workerinput"):  # an xdist worker: the controller records
        return
    cache.set(FILE_SECONDS, {**cache.get(FILE_SECONDS, {}), **_this_run})  # a partial run keeps the others' times
