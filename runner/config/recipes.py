"""The schemas of a training recipe: how images are augmented, how a model is evaluated, and how the
trainer runs (runner/config/schema.py composes them into the whole config)."""

import dataclasses
import enum
from typing import Optional

from runner.config.bounds import at_least


@dataclasses.dataclass
class AugmentConfig:
    name: str = "crop_flip"  # crop_flip, crop (no mirror), inception, scale_jitter, none: augment.py CROPS
    # crop_flip: the shorter side is resized to input * resize_ratio before the random crop
    # (256 for a 224 input, as AlexNet and VGG). None (augment=none's eval.resize_ratio unset): the
    # evaluation's crop (runner.data.splits.training_augmentation).
    resize_ratio: Optional[float] = 256 / 224
    flip: bool = True
    # inception: random-resized crop's area fraction and aspect ratio ranges (Szegedy et al. 2014).
    area_range: list[float] = dataclasses.field(default_factory=lambda: [0.08, 1.0])
    aspect_range: list[float] = dataclasses.field(default_factory=lambda: [3 / 4, 4 / 3])
    # scale_jitter: the shorter side drawn from [low, high] before the crop, for a 224 input (VGG's
    # [256, 512], Simonyan & Zisserman 2015, Section 3.1); it scales with the input (runner/data/augment.py).
    scale_range: Optional[list[int]] = at_least(224, None, says="expected a shorter side >= 224 (the crop's)")
    # AlexNet's PCA lighting: the std of each component's random weight (0.1, Krizhevsky et al. 2012,
    # Section 4.1); GoogLeNet's photometric distortions at this times TF-Slim's ranges (1.0); 0: off.
    pca_lighting: float = at_least(0, 0.0, says="expected a standard deviation >= 0 (0 is off)")
    photometric: float = at_least(0, 0.0, says="expected a strength >= 0 (0 is off, 1 TF-Slim's ranges)")
    # Per-image policies after the crop and flip (runner/data/policies.py): randaugment, trivialaugment,
    # autoaugment (its ImageNet policy); null: off. RandAugment's N operations at magnitude bin M of
    # torchvision's 0-30 (M=9: RandAugment's ResNet-50 setting; timm's M=9, on 0-10, is our 27).
    policy: Optional[str] = None
    policy_ops: int = at_least(1, 2)
    policy_magnitude: int = at_least(0, 9, says="expected a magnitude bin, 0 to 30")
    # Random erasing's probability per image, applied last (Zhong et al. 2020, Algorithm 1); 0: off.
    random_erasing: float = at_least(0, 0.0, says="expected a probability, 0 to 1 (0 is off)")
    # Batches mixed on the device (runner/training/mixing.py): Beta(alpha, alpha)'s alpha for mixup
    # (Zhang et al. 2018; 0.2 for ImageNet) and CutMix (Yun et al. 2019; 1.0); 0 is off.
    mixup: float = at_least(0, 0.0, says="expected an alpha >= 0 (0 is off)")
    cutmix: float = at_least(0, 0.0, says="expected an alpha >= 0 (0 is off)")
    mix_prob: float = 1.0  # the probability that a batch is mixed
    mix_switch_prob: float = 0.5  # with both on: the probability that a mixed batch uses CutMix


@dataclasses.dataclass
class EvalConfig:
    # shorter side / crop before the centre crop; None: the crop the weights' card states (BVLC AlexNet's
    # 256/227), else 256/224 (runner.data.splits.DEFAULT_CROP)
    resize_ratio: Optional[float] = None
    ten_crop: bool = False  # AlexNet's four corners + centre and their mirrors, softmax averaged
    # VGG's multi-scale evaluation (Simonyan & Zisserman 2015, Section 4.2): the centre crop at each
    # shorter side Q, for a 224 input (scaled with it), softmax averaged; logged as *_multiscale.
    scales: Optional[list[int]] = at_least(224, None, says="expected a shorter side >= 224 (the crop's)")


class Strategy(enum.Enum):
    auto = "auto"
    mirrored = "mirrored"
    multi_worker = "multi_worker"
    default = "default"


class Precision(enum.Enum):
    auto = "auto"  # the device's fastest: runner.session.strategy.precision
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
    # None: XLA on one GPU under the default strategy (runner.session.strategy.uses_xla)
    jit_compile: Optional[bool] = None
    # None: 16 with GPUs, 1 on a CPU (runner.session.strategy.steps_per_execution)
    steps_per_execution: Optional[int] = at_least(1, None)
    steps_per_epoch: Optional[int] = at_least(1, None)  # cap, for smoke runs; None: one pass over the data
    label_smoothing: float = 0.0
    early_stopping_patience: int = at_least(0, 0)  # epochs without val_top1 progress; 0: off
    resume: bool = True  # continue this config's interrupted run from its last completed epoch; false: start afresh
    resume_run: Optional[str] = None  # an MLflow run id: continue that run only (a resume point of this config)
    seed: int = at_least(0, 0)  # NumPy refuses negative seeds
    # With model.freeze: the epoch (1-based) from which the frozen rows train too; None: never.
    unfreeze_epoch: Optional[int] = at_least(1, None)
    # true: train a model the memory estimate says cannot fit (runner/session/memory_check.py)
    skip_memory_check: bool = False
    # Polyak averaging: evaluate, checkpoint and save the exponential moving average of the weights,
    # with this decay per update (e.g. 0.9999); null or 0: off (runner/training/averaged.py)
    ema: Optional[float] = at_least(0, None, says="expected a decay in [0, 1), e.g. 0.9999; null or 0: off")
    # Each update's batch (trainer.batch_size) in this many forward/backward passes, gradients averaged
    grad_accumulation: int = at_least(1, 1)
