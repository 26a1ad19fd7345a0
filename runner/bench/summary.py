"""What the bench ran on and what it measured, as text: the machine, the settings, the tables."""

import os
import pathlib
import platform

import keras
import psutil
import tensorflow as tf
from omegaconf import DictConfig
from tabulate import tabulate

from runner.bench.figures import FIGURES, NOT_ASKED, RATIOS, STAGES, Bench
from runner.session.parts import Session

GIB = 2**30


def machine(strategy: tf.distribute.Strategy) -> dict:
    """CPU model and cores, memory, the device the steps ran on, and the software's versions."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / GIB, 1),
        "device": _device(),
        "replicas": strategy.num_replicas_in_sync,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


def settings(cfg: DictConfig, session: Session) -> str:
    """What was measured, in one line: the config's model, data and batch, and what `auto` resolved to."""
    height, width, channels = cfg.model.input_shape
    resolved, strategy = session.part.resolved, session.strategy
    replicas = strategy.num_replicas_in_sync
    return (f"model={cfg.model.name} {height}x{width}x{channels}, data={cfg.data.name}, augment={cfg.augment.name}, "
            f"batch {cfg.trainer.batch_size}, {resolved.precision}, XLA {'on' if resolved.jit_compile else 'off'}, "
            f"{type(strategy).__name__} ({replicas} replica{'s' if replicas > 1 else ''}), "
            f"steps_per_execution {resolved.steps_per_execution}; input stages: median of "
            f"{cfg.bench.rounds} round{'s' if cfg.bench.rounds > 1 else ''}")


def table(result: Bench) -> str:
    """The figures with each stage's memory, then the ratios against their targets, then the infer
    stage's table when it ran."""
    asked = [name for name in STAGES if result.stages[name].reason != NOT_ASKED]
    rows = []
    for name in asked:
        stage = result.stages[name]
        rows.append([FIGURES[name], stage.images_per_second, stage.images or None,
                     stage.seconds or None, stage.start_rss_mib, stage.peak_rss_mib, stage.reason or ""])
    figures = tabulate(rows, headers=["figure", "images/s", "images", "seconds", "RSS before (MiB)",
                                      "peak RSS (MiB)", "note"], floatfmt=".1f", missingval="-")
    ratio_rows = []
    for name, value in result.ratios().items():
        top, bottom = RATIOS[name]
        if top not in asked or bottom not in asked:
            continue
        target = result.targets()[name]
        met = "" if value is None else ("met" if value >= target else "not met")
        ratio_rows.append([f"{top} / {bottom}", value, f">= {target:g}", met])
    ratios = ratio_rows and tabulate(ratio_rows, headers=["ratio", "value", "target", ""], floatfmt=".2f",
                                     missingval="-")
    box = result.machine
    host = (f"machine: {box['cpu']}, {box['cores']} cores ({box['usable_cores']} usable), {box['memory_gib']} GiB; "
            f"device {box['device']}; TensorFlow {box['tensorflow']}, Keras {box['keras']}, Python {box['python']}")
    if "torch" in box:
        host += f"; peer: PyTorch {box['torch']}, torchvision {box['torchvision']}, {box['peer_threads']} threads"
    inference = [result.inference.table()] if result.inference else []
    parts = [host + "\n" + f"measured: {result.settings}", figures if asked else "", ratios, *inference]
    return "\n\n".join(part for part in parts if part)


def _cpu_model() -> str:
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _device() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    names = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
    return ", ".join(names)
