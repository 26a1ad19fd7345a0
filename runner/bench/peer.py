"""The bench's peer stage: the same network's training step in PyTorch, on the same batches, precision
and threads, in the same run, so `step / peer` says how our step compares with the tool most of our
users would otherwise pick.

PyTorch runs in a child process (runner/bench/torch_step.py): torch imported after TensorFlow crashes
the process (their bundled oneDNN and OpenMP collide), and its own process leaves it no TensorFlow
threads to share the cores with, nor ours any of its. This side writes what the child needs into a
temporary folder: the step stage's batches (uint8) and the settings. torch is optional
(`pip install -e '.[peer]'`); without it the stage says so and the rest runs.
"""

import importlib.metadata
import importlib.util
import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf
from omegaconf import DictConfig

from runner.bench.stages import NotApplicable
from runner.bench.torch_step import TORCHVISION
from runner.data.splits import data_preprocessing
from runner.session.parts import Session


def peer_step(cfg: DictConfig, session: Session) -> tuple[int, float]:
    """Images trained and seconds taken by bench.step_batches PyTorch steps after bench.warmup_steps."""
    if cfg.model.name not in TORCHVISION:
        raise NotApplicable(f"model={cfg.model.name} has no torchvision counterpart (only {', '.join(TORCHVISION)} do)")
    if not software():
        raise NotApplicable("PyTorch is not installed: pip install -e '.[peer]' adds the peer")
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as folder:
        folder = pathlib.Path(folder)
        (folder / "settings.json").write_text(json.dumps(_settings(cfg, session)))
        images, labels = _held_batches(session, cfg.bench.memory_batches)
        np.savez(folder / "batches.npz", images=images, labels=labels)
        child = subprocess.run([sys.executable, "-m", "runner.bench.torch_step", str(folder)],
                               capture_output=True, text=True, env=os.environ | {"PYTHONPATH": _repository()})
        result = folder / "result.json"
        if not result.is_file():
            last = (child.stderr.strip().splitlines() or [f"exit status {child.returncode}"])[-1]
            raise NotApplicable(f"the PyTorch step failed: {last}")
        measured = json.loads(result.read_text())
    if measured.get("reason"):
        raise NotApplicable(measured["reason"])
    return measured["images"], measured["seconds"]


def software() -> dict:
    """The peer's versions and threads for the bench's machine record; none without torch."""
    if not (importlib.util.find_spec("torch") and importlib.util.find_spec("torchvision")):
        return {}
    return {"torch": importlib.metadata.version("torch"), "torchvision": importlib.metadata.version("torchvision"),
            "peer_threads": threads()}


def threads() -> int:
    """TensorFlow's intra-op pool: its configured size, else (0) every usable core, as its default is."""
    configured = tf.config.threading.get_intra_op_parallelism_threads()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return configured or usable


def _settings(cfg: DictConfig, session: Session) -> dict:
    statistics = data_preprocessing(cfg.data)
    channels = cfg.model.input_shape[-1]
    return {
        "model": cfg.model.name,
        "classes": cfg.data.num_classes,
        "trainable_parameters": sum(math.prod(weight.shape) for weight in session.model.trainable_weights),
        "aux_loss_weight": session.training.loss.aux_loss_weight or 0.0,
        "label_smoothing": cfg.trainer.label_smoothing,
        "precision": session.part.resolved.precision,
        "optimizer": {key: cfg.optimizer[key] for key in ("name", "lr", "momentum", "nesterov", "weight_decay")},
        "mean": np.broadcast_to(statistics.mean, channels).tolist(),
        "std": np.broadcast_to(statistics.std, channels).tolist(),
        "threads": threads(),
        "gpu": bool(tf.config.list_physical_devices("GPU")),
        "warmup_steps": max(1, cfg.bench.warmup_steps),
        "steps": cfg.bench.step_batches,
    }


def _held_batches(session: Session, count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` batches of the training pipeline, the step stage's own, as uint8 [count, B, H, W, C]."""
    taken = list(session.splits.train.repeat().take(count))
    return np.stack([images.numpy() for images, _ in taken]), np.stack([labels.numpy() for _, labels in taken])


def _repository() -> str:
    """The folder holding the runner package, so the child imports this copy of it."""
    return os.pathsep.join(filter(None, [str(pathlib.Path(__file__).resolve().parents[2]),
                                         os.environ.get("PYTHONPATH")]))
