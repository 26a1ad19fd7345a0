"""The schemas of a training recipe: how images are augmented, how a model is evaluated, and how the
trainer runs (runner/schema.py composes them into the whole config)."""

import dataclasses
import enum
from typing import Optional

from runner.bounds import at_least


@dataclasses.dataclass
class AugmentConfig:
    name: str = "crop_flip"  # crop_flip, crop (no mirror), inception, none: runner/data/augment.py CROPS
    # crop_flip: the shorter side is resized to input * resize_ratio before the random crop
    # (256 for a 224 input, as AlexNet and VGG). None (augment=none's eval.resize_ratio unset): the
    # evaluation's crop (runner.data.splits.training_augmentation).
    resize_ratio: Optional[float] = 256 / 224
    flip: bool = True
    # inception: random-resized crop's area fraction and aspect ratio ranges (Szegedy et al. 2014).
    area_range: list[float] = dataclasses.field(default_factory=lambda: [0.08, 1.0])
    aspect_range: list[float] = dataclasses.field(default_factory=lambda: [3 / 4, 4 / 3])


@dataclasses.dataclass
class EvalConfig:
    # shorter side / crop before the centre crop; None: the crop the weights' card states (BVLC AlexNet's
    # 256/227), else 256/224 (runner.data.splits.DEFAULT_CROP)
    resize_ratio: Optional[float] = None
    ten_crop: bool = False  # AlexNet's four corners + centre and their mirrors, softmax averaged


class Strategy(enum.Enum):
    auto = "auto"
    mirrored = "mirrored"
    multi_worker = "multi_worker"
    default = "default"


class Precision(enum.Enum):
    auto = "auto"  # the device's fastest: runner.training.strategy.precision
    float32 = "float32"
    mixed_float16 = "mixed_float16"
    mixed_bfloat16 = "mixed_bfloat16"


@dataclasses.dataclass
class TrainerConfig:
    epochs: int = at_least(1, 30, says="train for at least 1 epoch")
    batch_size: int = at_least(1, 64)  # global: split across replicas
    strategy: Strategy = Strategy.auto
    # > 0: split the CPU into N logical devices (a real MirroredStrategy without GPUs)
    cpu_replicas: int = at_least(0, 0)
    precision: Precision = Precision.auto
    # None: XLA on one GPU under the default strategy (runner.training.strategy.uses_xla)
    jit_compile: Optional[bool] = None
    # None: 16 with GPUs, 1 on a CPU (runner.training.strategy.steps_per_execution)
    steps_per_execution: Optional[int] = at_least(1, None)
    steps_per_epoch: Optional[int] = at_least(1, None)  # cap, for smoke runs; None: one pass over the data
    label_smoothing: float = 0.0
    early_stopping_patience: int = at_least(0, 0)  # epochs without val_top1 progress; 0: off
    resume: bool = True  # continue this config's interrupted run from its last completed epoch; false: start afresh
    resume_run: Optional[str] = None  # an MLflow run id: continue that run only (a resume point of this config)
    seed: int = at_least(0, 0)  # NumPy refuses negative seeds
    # With model.freeze: the epoch (1-based) from which the frozen rows train too; None: never.
    unfreeze_epoch: Optional[int] = at_least(1, None)
    # true: train a model the memory estimate says cannot fit (runner/training/memory_check.py)
    skip_memory_check: bool = False
