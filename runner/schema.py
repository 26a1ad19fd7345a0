"""Dataclass schemas for every config group, registered in Hydra's ConfigStore.

The YAML files under conf/ are merged into these, so a misspelt key or a wrong type fails when
the config is composed, with the key's full path in the message.
"""

import dataclasses
import enum
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclasses.dataclass
class ModelConfig:
    name: str = MISSING
    input_shape: list[int] = MISSING  # height, width, channels
    blocks: list[Any] = MISSING  # rows of the block vocabulary; checked by builders
    aux_loss_weight: Optional[float] = None  # weight of side-output losses; 0 removes side outputs
    without: list[str] = dataclasses.field(default_factory=list)  # block types left out: [lrn] (ablations)


@dataclasses.dataclass
class DataConfig:
    name: str = MISSING  # digits, imagenette, imagenet, folder, synthetic
    num_classes: int = MISSING
    root: Optional[str] = None  # where the dataset lives on disk (folder layouts, imagenette)
    variant: Optional[str] = None  # imagenette: full, 320 or 160 (pixels of the shorter side)
    cache: bool = False  # keep decoded, resized uint8 images after the first epoch
    cache_dir: Optional[str] = None  # with cache: null keeps them in memory; a folder: in files there, this run's own
    check_files: bool = True  # image folders: decode every file once first, skip those that fail
    val_fraction: float = 0.2  # digits: stratified validation share
    train_size: int = 512  # synthetic: images per split
    val_size: int = 128
    shuffle_buffer: int = 10_000
    mean: list[float] = dataclasses.field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = dataclasses.field(default_factory=lambda: [0.229, 0.224, 0.225])


@dataclasses.dataclass
class AugmentConfig:
    name: str = "none"  # crop_flip, crop (no mirror), inception, none
    # crop_flip: the shorter side is resized to input * resize_ratio before the random crop
    # (256 for a 224 input, as AlexNet and VGG).
    resize_ratio: float = 256 / 224
    flip: bool = True
    # inception: random-resized crop's area fraction and aspect ratio ranges (Szegedy et al. 2014).
    area_range: list[float] = dataclasses.field(default_factory=lambda: [0.08, 1.0])
    aspect_range: list[float] = dataclasses.field(default_factory=lambda: [3 / 4, 4 / 3])


@dataclasses.dataclass
class EvalConfig:
    resize_ratio: float = 256 / 224  # shorter side before the centre crop
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
    epochs: int = 30
    batch_size: int = 64  # global: split across replicas
    strategy: Strategy = Strategy.auto
    cpu_replicas: int = 0  # > 0: split the CPU into N logical devices (a real MirroredStrategy without GPUs)
    precision: Precision = Precision.auto
    jit_compile: Optional[bool] = None  # None: XLA on one GPU under the default strategy (runner.training.strategy.uses_xla)
    steps_per_execution: Optional[int] = None  # None: 16 with GPUs, 1 on a CPU (runner.training.strategy.steps_per_execution)
    steps_per_epoch: Optional[int] = None  # cap, for smoke runs; None: one pass over the data
    label_smoothing: float = 0.0
    early_stopping_patience: int = 0  # epochs without val_top1 progress; 0: off
    resume: str = "auto"  # auto: continue this config's interrupted run; false: start afresh; or a run id
    seed: int = 0


@dataclasses.dataclass
class OptimizerConfig:
    name: str = "sgd"  # sgd, adam, adamw
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0


@dataclasses.dataclass
class ScheduleConfig:
    name: str = "constant"  # constant, step, cosine, plateau
    warmup_epochs: int = 0
    decay_rate: float = 0.1  # step and plateau: multiply the rate by this
    step_epochs: list[int] = dataclasses.field(default_factory=list)  # step: epochs where it decays
    patience: int = 5  # plateau: epochs without val_loss progress before a decay
    min_lr: float = 0.0


@dataclasses.dataclass
class TrackingConfig:
    uri: Optional[str] = None  # MLFLOW_TRACKING_URI wins; None: sqlite under outputs/
    experiment: Optional[str] = None  # None: the dataset's name
    run_name: Optional[str] = None  # None: <model>-<data>-<time>
    log_model: bool = False
    system_metrics: bool = False
    tags: dict[str, str] = dataclasses.field(default_factory=dict)  # set on the run (and a sweep's parent)


class ReportFormat(enum.Enum):
    table = "table"
    markdown = "markdown"
    json = "json"


@dataclasses.dataclass
class DescribeConfig:
    format: ReportFormat = ReportFormat.table
    output: Optional[str] = None  # write the report here instead of printing it


@dataclasses.dataclass
class Config:
    model: ModelConfig = MISSING
    data: DataConfig = MISSING
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
    tracking: TrackingConfig = dataclasses.field(default_factory=TrackingConfig)
    describe: DescribeConfig = dataclasses.field(default_factory=DescribeConfig)


@dataclasses.dataclass
class CompareConfig:
    run_id: Optional[str] = None  # a sweep's parent run; None: the latest sweep
    experiment: Optional[str] = None  # look for the latest sweep only in this experiment
    tag: Optional[str] = None  # key=value: the latest sweep carrying this tag (tracking.tags)


@dataclasses.dataclass
class CompareAppConfig:
    tracking: TrackingConfig = dataclasses.field(default_factory=TrackingConfig)
    compare: CompareConfig = dataclasses.field(default_factory=CompareConfig)


@dataclasses.dataclass
class VisualizeConfig:
    run_id: Optional[str] = None  # a training run; None: the latest FINISHED run that is not a sweep's parent
    # Feature maps of these rows (describe's names; a Keras layer's name works too); None: the first and
    # a middle convolution row and the last spatial row.
    rows: Optional[list[str]] = None
    images: int = 8  # validation images shown in the feature maps and the guided backpropagation
    feature_channels: int = 16  # channels per image in a feature map figure: the most active ones
    top_row: Optional[str] = None  # whose channels get top images and guided backprop; None: the last spatial row
    channels: int = 8  # its most active channels shown
    top_k: int = 6  # images per channel
    max_images: int = 512  # validation images scanned for the top activations
    batch_size: int = 32  # images per forward pass


@dataclasses.dataclass
class VisualizeAppConfig:
    tracking: TrackingConfig = dataclasses.field(default_factory=TrackingConfig)
    visualize: VisualizeConfig = dataclasses.field(default_factory=VisualizeConfig)


@dataclasses.dataclass
class BenchConfig:
    stages: list[str] = dataclasses.field(  # which to measure (always in this order); the others are null
        default_factory=lambda: ["decode", "pipeline", "cached", "keras", "step", "fit"])
    warmup_batches: int = 20  # input stages (decode, pipeline, cached, keras): skipped while tf.data tunes itself
    batches: int = 100  # input stages: batches timed
    rounds: int = 3  # input stages: measured in turn this many times; each figure is the median of its rounds
    warmup_steps: int = 2  # step stage: training steps before timing (the first compiles)
    step_batches: int = 6  # step stage: training steps timed, on batches already in memory
    memory_batches: int = 2  # step stage: distinct batches, from the pipeline, it cycles through
    fit_steps: int = 6  # fit stage: steps per epoch; a warm-up epoch (compiling), then a timed one
    output: Optional[str] = None  # the JSON; None: <hydra output dir>/bench.json
    log_mlflow: bool = False  # record the figures and the JSON as an MLflow run


@dataclasses.dataclass
class BenchAppConfig(Config):
    bench: BenchConfig = dataclasses.field(default_factory=BenchConfig)


def register() -> None:
    ConfigStore.instance().store(name="schema", node=Config)
    ConfigStore.instance().store(name="compare_schema", node=CompareAppConfig)
    ConfigStore.instance().store(name="visualize_schema", node=VisualizeAppConfig)
    ConfigStore.instance().store(name="bench_schema", node=BenchAppConfig)
