"""One sentence, once per process, when a config asks for a GPU on a machine without one.

What asks for one: trainer.strategy=mirrored without trainer.cpu_replicas (it mirrors over GPUs; on
a CPU alone it has one device to mirror to) and trainer.precision=mixed_float16 (float16 has no fast
path on CPUs; bfloat16 has, on some). `auto` asks for nothing: it takes what the machine has.
TensorFlow's own words for this (`failed call to cuInit`) are below the log level runner/__init__.py sets.
"""

import sys

import tensorflow as tf
from omegaconf import DictConfig

_said: list[str] = []  # the notice this process gave: one at most


def say_when_no_gpu(trainer: DictConfig) -> None:
    asking = _asking_for_a_gpu(trainer)
    if not asking or _said or tf.config.list_physical_devices("GPU"):
        return
    _said.append(asking)
    print(f"note: this machine has no GPU that TensorFlow can use (asked for by {asking}); the run uses the CPU",
          file=sys.stderr)


def _asking_for_a_gpu(trainer: DictConfig) -> str:
    asking = []
    if trainer.strategy.value == "mirrored" and trainer.cpu_replicas < 2:
        asking.append("trainer.strategy=mirrored")
    if trainer.precision.value == "mixed_float16":
        asking.append("trainer.precision=mixed_float16")
    return " and ".join(asking)
