"""Dataclass schemas for every config group, registered in Hydra's ConfigStore: the one source of
defaults and bounds.

The YAML files under conf/ are merged into these and set only what their choice changes, so a
misspelt key or a wrong type fails when the config is composed, with the key's full path in the
message. A field made by `at_least` carries its smallest valid value, which runner/config/bounds.py checks
before anything is built (a type cannot say "positive").
"""

import dataclasses
import enum
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from runner.config.bounds import at_least
from runner.config.recipes import AugmentConfig, EvalConfig, TrainerConfig


@dataclasses.dataclass
class ModelConfig:
    name: str = MISSING
    input_shape: list[int] = MISSING  # height, width, channels
    blocks: list[Any] = MISSING  # rows of the block vocabulary; checked by builders
    aux_loss_weight: Optional[float] = None  # weight of side-output losses; 0 removes side outputs
    without: list[str] = dataclasses.field(default_factory=list)  # block types left out: [lrn] (ablations)
    # Not the architecture's: where its starting weights come from and which rows stay fixed
    # (runner/weights). None: random initialisation; imagenet, a file, or runs:/<run_id>.
    weights: Optional[str] = None
    freeze: Optional[str] = None  # a row's name: it and every row before it are not trained


@dataclasses.dataclass
class DataConfig:
    name: str = MISSING  # digits, imagenette, imagenet, folder, synthetic: runner/data/splits.py SOURCES
    num_classes: int = at_least(2, MISSING, says="a classifier needs at least 2 classes")
    root: Optional[str] = None  # where the dataset lives on disk (folder layouts, imagenette)
    variant: Optional[str] = None  # imagenette: full, 320 or 160 (pixels of the shorter side)
    cache: bool = False  # keep decoded, resized uint8 images after the first epoch
    cache_dir: Optional[str] = None  # with cache: null keeps them in memory; a folder: in files there, this run's own
    check_files: bool = True  # image folders: decode every file once first, skip those that fail
    # An image file whose header claims more pixels is skipped before it is decoded (a few hundred KB of
    # PNG can claim gigabytes of pixels); 100 megapixels is above any camera's photo.
    max_pixels: int = at_least(1, 100_000_000)
    val_fraction: float = 0.2  # digits: stratified validation share
    train_size: int = at_least(1, 512)  # synthetic: images per split
    val_size: int = at_least(1, 128)
    shuffle_buffer: int = at_least(1, 10_000)
    # Per channel, in [0, 1] units; None: what model.weights were trained with, else ImageNet's
    # (runner/data/pipeline.py IMAGENET). Set here, it wins over the weights' (with a warning).
    mean: Optional[list[float]] = None
    std: Optional[list[float]] = None
    # Imbalanced training sets (runner/data/balance.py): a loss weight per class, `balanced`
    # (n / (classes * n_c), scikit-learn's rule) or one number per class in label order; None: all 1.
    class_weights: Any = None
    sampling: str = "shuffle"  # shuffle: every image once an epoch; balanced: every class equally often


@dataclasses.dataclass
class OptimizerConfig:
    # SGD with momentum, the papers' (AlexNet, VGG, ResNet: momentum 0.9); conf/optimizer/adam and
    # adamw change name, lr and weight_decay. The names: runner/training/optim.py OPTIMIZERS.
    name: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0005


@dataclasses.dataclass
class ScheduleConfig:
    name: str = "cosine"  # cosine, step, plateau, constant: runner/training/optim.py SCHEDULES
    warmup_epochs: int = at_least(0, 1)  # cosine: linear warm-up from 0 to optimizer.lr
    decay_rate: float = 0.1  # step and plateau: multiply the rate by this
    step_epochs: list[int] = at_least(1, default_factory=list)  # step: epochs where it decays
    patience: int = at_least(0, 5)  # plateau: epochs without val_loss progress before a decay
    min_lr: float = 0.0


@dataclasses.dataclass
class TrackingConfig:
    uri: Optional[str] = None  # MLFLOW_TRACKING_URI wins; None: sqlite under outputs/
    experiment: Optional[str] = None  # None: the dataset's name
    run_name: Optional[str] = None  # None: <model>-<data>-<time>
    log_model: bool = False  # the model.keras artifact, and the model in MLflow's Keras flavor (servable)
    register_model: Optional[str] = None  # a Model Registry name: logged (as log_model) and registered there
    system_metrics: bool = False
    tags: dict[str, str] = dataclasses.field(default_factory=dict)  # set on the run (and a sweep's parent)


class ReportFormat(enum.Enum):
    table = "table"
    markdown = "markdown"
    json = "json"
    png = "png"  # the network drawn, one box per row (runner/architecture/picture.py)
    svg = "svg"


@dataclasses.dataclass
class DescribeConfig:
    format: ReportFormat = ReportFormat.table
    output: Optional[str] = None  # write the report here instead of printing it (png, svg: <model>.<format>)


class SweepMetric(enum.Enum):
    """What a sweep may optimise: the metrics a run logs when it ends (the final evaluation's, and the
    last epoch's validation figures)."""
    eval_top1 = "eval_top1"
    eval_top5 = "eval_top5"
    eval_top1_10crop = "eval_top1_10crop"  # these two need eval.ten_crop=true
    eval_top5_10crop = "eval_top5_10crop"
    eval_top1_multiscale = "eval_top1_multiscale"  # these two need eval.scales
    eval_top5_multiscale = "eval_top5_multiscale"
    val_top1 = "val_top1"
    val_top5 = "val_top5"
    val_loss = "val_loss"


TEN_CROP_METRICS = (SweepMetric.eval_top1_10crop, SweepMetric.eval_top5_10crop)
MULTISCALE_METRICS = (SweepMetric.eval_top1_multiscale, SweepMetric.eval_top5_multiscale)


class Direction(enum.Enum):
    maximize = "maximize"
    minimize = "minimize"


@dataclasses.dataclass
class SweepConfig:
    # The metric `python -m runner` returns: what a sweeper optimises (Optuna's direction is this one),
    # what the sweep's parent run records its best child by, and the comparison's order.
    objective: SweepMetric = SweepMetric.eval_top1
    direction: Direction = Direction.maximize
    # When the sweep ends, every finished job's first-layer filters side by side on the parent run
    # (first_layer_filters.png), headed with its objective: Zeiler & Fergus 2014's Section 4 comparison.
    first_layer_filters: bool = False


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
    sweep: SweepConfig = dataclasses.field(default_factory=SweepConfig)


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
    # runs:/<run_id>, a training run: its model and its own validation images. None: model.weights
    # (imagenet, a file) on model= and data=, recorded as a new run; neither: the latest finished run.
    model: Optional[str] = None
    # Feature maps of these rows (describe's names; a Keras layer's name works too); None: the first and
    # a middle convolution row and the last spatial row.
    rows: Optional[list[str]] = None
    images: int = at_least(1, 8)  # validation images shown in the feature maps and the projections
    feature_channels: int = at_least(1, 16)  # channels per image in a feature map figure: the most active ones
    # whose channels get top images, projections and Figure 2; None: the last spatial row
    top_row: Optional[str] = None
    channels: int = at_least(1, 8)  # its strongest channels shown
    top_k: int = at_least(1, 6)  # top images per channel
    patches: int = at_least(1, 9)  # Figure 2: receptive-field patches per channel (the paper shows 9)
    max_images: int = at_least(1, 512)  # validation images scanned for the top activations
    batch_size: int = at_least(1, 32)  # images per forward pass
    # Grad-CAM's row (describe's names; no auxiliary head, none after global pooling); None: the last conv row
    gradcam_row: Optional[str] = None
    occlusion_size: float = 0.25  # the grey square's side, a fraction of the image's side, in (0, 1]
    occlusion_stride: float = 0.125  # its step between positions, a fraction of the image's side, in (0, 1]


@dataclasses.dataclass
class PredictConfig:
    # runs:/<run_id> (MLflow's form) or a model.keras file; None: model= with model.weights (imagenet, ...)
    model: Optional[str] = None
    images: Optional[str] = None  # an image file, a folder (searched recursively) or a glob
    top_k: int = at_least(1, 5)  # classes shown per image
    output: Optional[str] = None  # a .csv file: file,rank,class,probability (rank 1: the top); None: a table
    batch_size: int = at_least(1, 64)  # images per forward pass


class ExportFormat(enum.Enum):
    saved_model = "saved_model"  # TensorFlow's SavedModel (serving, TF Serving, TF.js): <output>/saved_model/
    onnx = "onnx"  # <output>/model.onnx; needs the onnx extra (tf2onnx, onnxruntime)
    tflite = "tflite"  # <output>/model.tflite (LiteRT)


@dataclasses.dataclass
class ExportConfig:
    model: Optional[str] = None  # runs:/<run_id> or a model.keras file; None: model= with model.weights
    format: ExportFormat = ExportFormat.saved_model
    output: Optional[str] = None  # the folder that receives the export; None: Hydra's run folder
    check_images: int = at_least(1, 8)  # random images the export must classify as Keras does
    tolerance: float = 1e-4  # largest difference of a probability allowed
    overwrite: bool = False  # replace an earlier export of the same format in export.output


@dataclasses.dataclass
class BenchConfig:
    # which to measure (always in this order); the others are null; `infer` too, only when named
    stages: list[str] = dataclasses.field(
        default_factory=lambda: ["decode", "pipeline", "cached", "keras", "step", "peer", "fit"])
    # input stages (decode, pipeline, cached, keras): skipped while tf.data tunes itself
    warmup_batches: int = at_least(0, 20)
    batches: int = at_least(1, 100)  # input stages: batches of trainer.batch_size images timed
    # input stages: measured in turn this many times; each figure is the median of its rounds
    rounds: int = at_least(1, 3)
    warmup_steps: int = at_least(0, 2)  # step and peer stages: training steps before timing (the first compiles)
    step_batches: int = at_least(1, 6)  # step and peer stages: training steps timed, on batches in memory
    memory_batches: int = at_least(1, 2)  # step stage: distinct batches, from the pipeline, it cycles through
    fit_steps: int = at_least(1, 6)  # fit stage: steps per epoch; a warm-up epoch (compiling), then a timed one
    # infer stage (only when bench.stages names `infer`): Keras and its exports, on validation images
    infer_batch: int = at_least(1, 32)  # images per call for images/s
    infer_warmup: int = at_least(1, 3)  # untimed calls at each batch size first (the first traces or allocates)
    infer_batches: int = at_least(1, 10)  # timed calls of infer_batch images
    latency_runs: int = at_least(1, 100)  # timed calls of one image: their median and 99th percentile
    infer_tolerance: float = 1e-4  # largest difference of a probability from Keras; an export beyond it is not timed
    output: Optional[str] = None  # the JSON; None: <hydra output dir>/bench.json
    log_mlflow: bool = False  # record the figures and the JSON as an MLflow run


def register() -> None:
    store = ConfigStore.instance()
    store.store(name="schema", node=Config)
    store.store(name="compare_schema", node=CompareAppConfig)
    store.store(name="predict_schema", node=PredictConfig, package="predict")  # as the bench's
    store.store(name="export_schema", node=ExportConfig, package="export")
    # Only the `bench` node: conf/bench.yaml composes it first, then the runner's whole config (a
    # structured root cannot gain a key afterwards, nor take a subclass's defaults over its groups').
    store.store(name="bench_schema", node=BenchConfig, package="bench")
    store.store(name="visualize_schema", node=VisualizeConfig, package="visualize")  # as the bench's
