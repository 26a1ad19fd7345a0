"""Which tf.distribute strategy a run uses, and the device set-up that must precede it."""

import keras
import tensorflow as tf
from omegaconf import DictConfig

from runner.errors import UserError


def make_strategy(trainer: DictConfig) -> tf.distribute.Strategy:
    _configure_devices(trainer.cpu_replicas)
    choice = trainer.strategy.value
    gpus = tf.config.list_logical_devices("GPU")
    if choice == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if choice == "default" or (choice == "auto" and len(gpus) < 2 and trainer.cpu_replicas < 2):
        # One device: the default strategy, under which Keras keeps XLA on.
        return tf.distribute.get_strategy()
    devices = [device.name for device in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


def uses_xla(trainer: DictConfig, strategy: tf.distribute.Strategy) -> bool:
    """trainer.jit_compile, or by default XLA exactly where Keras would use it: one device."""
    if trainer.jit_compile is not None:
        return trainer.jit_compile
    return strategy.num_replicas_in_sync == 1 and not isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy)


def set_precision(trainer: DictConfig) -> None:
    keras.config.set_dtype_policy(trainer.precision.value)


def _configure_devices(cpu_replicas: int) -> None:
    # TensorFlow keeps GPU memory for the life of the process; grow it as needed instead, so
    # jobs sharing a process (a multirun) and other processes can use the rest.
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)
    if cpu_replicas < 2:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration()] * cpu_replicas
    if tf.config.get_logical_device_configuration(cpu) == wanted:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError:
        raise UserError(
            f"trainer.cpu_replicas={cpu_replicas}: TensorFlow has already started in this process "
            "with another device split; run the job in a fresh process"
        ) from None
