"""The six measurements. Each returns (images, seconds) of its timed part, or raises NotApplicable.

The input stages skip bench.warmup_batches batches and time the next bench.batches; the step stage
runs bench.warmup_steps steps (at least one: it compiles) and times bench.step_batches; the fit
stage runs two epochs of bench.fit_steps steps and times the second (the first compiles).
"""

import contextlib
import copy
import dataclasses
import math
import pathlib
import re
import shutil
import time
from typing import Iterator, Optional

import keras
import psutil
import tensorflow as tf
from omegaconf import DictConfig, OmegaConf

from runner.data import imagenette
from runner.data.source import as_written
from runner.data.splits import SOURCES, load, training_augmentation
from runner.environment import environment_set
from runner.mistakes.messages import first_line
from runner.session.parts import Session, epoch_steps
from runner.tracking.run import Run
from runner.tracking.store import store_in
from runner.training import loop
from runner.training.callbacks import standard_callbacks
from runner.training.steps import make_train_steps

AUTOTUNE = tf.data.AUTOTUNE
FOLDER_DATASETS = ("imagenette", "imagenet", "folder")  # read from root/train/<class>/<image>


class NotApplicable(Exception):
    """The stage has no figure for this config; the message says why."""


def with_values(cfg: DictConfig, values: dict) -> DictConfig:
    """A copy of cfg with these dotted keys set (cfg itself unchanged: DictConfig.copy is shallow)."""
    changed = copy.deepcopy(cfg)
    for key, value in values.items():
        OmegaConf.update(changed, key, value, merge=False)
    return changed


def timed_batches(dataset: tf.data.Dataset, warmup: int, batches: int) -> tuple[int, float]:
    """Images in `batches` batches after `warmup` skipped ones, and the seconds they took."""
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    images, start = 0, time.perf_counter()
    for _ in range(batches):
        images += int(tf.nest.flatten(next(iterator))[0].shape[0])
    return images, time.perf_counter() - start


# --- input stages --------------------------------------------------------------------------------


def decode(cfg: DictConfig) -> tuple[int, float]:
    """The training files read and decoded whole (no crop, no resize), in parallel on every core."""
    _need_folder(cfg, "decoding")
    files = SOURCES.of(cfg.data.name)(cfg).train.keys.map(as_written(lambda path, label: path))
    summaries = files.repeat().map(as_written(_decoded_summary), num_parallel_calls=AUTOTUNE, deterministic=False)
    dataset = summaries.batch(cfg.trainer.batch_size).prefetch(AUTOTUNE)
    return timed_batches(dataset, cfg.bench.warmup_batches, cfg.bench.batches)


def _decoded_summary(path):
    """[height, width, channels, first pixel's red]: images of different sizes cannot be batched, and a
    shape alone could be folded away by TensorFlow's graph optimiser, decode and all (it does so for
    a crop of constant size); a pixel value cannot."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.concat([tf.shape(image), tf.cast(image[0, 0, :1], tf.int32)], 0)


def pipeline(cfg: DictConfig, train: tf.data.Dataset) -> tuple[int, float]:
    """runner.data.splits.load(cfg).train with data.cache=false: every epoch reads and decodes again."""
    return timed_batches(train.repeat(), cfg.bench.warmup_batches, cfg.bench.batches)


def cached(cfg: DictConfig, examples: int) -> tuple[int, float]:
    """runner.data.splits.load(cfg).train with data.cache=true, after a first epoch has filled the cache."""
    expected, available = cache_bytes(cfg, examples), psutil.virtual_memory().available
    if not cfg.data.cache_dir and expected > 0.8 * available:
        raise NotApplicable(f"data.cache would hold about {expected / 2**30:.1f} GiB ({examples} images), "
                            f"more than this machine has free ({available / 2**30:.1f} GiB); "
                            "data.cache_dir=<folder> puts it in files")
    train = load(with_values(cfg, {"data.cache": True})).train
    for _ in train:  # the first epoch, whole: a cache left half-filled is dropped
        pass
    return timed_batches(train.repeat(), cfg.bench.warmup_batches, cfg.bench.batches)


def cache_bytes(cfg: DictConfig, examples: int) -> float:
    """What data.cache keeps: every training image resized to cover input x augment.resize_ratio, in
    uint8; the longer side taken as 4/3 of the shorter (ImageNet's usual 4:3 photographs)."""
    height, width, channels = cfg.model.input_shape
    ratio = training_augmentation(cfg).resize_ratio
    return examples * round(height * ratio) * round(width * ratio) * 4 / 3 * channels


def keras_baseline(cfg: DictConfig) -> tuple[int, float]:
    """What a user writes by hand: Keras's folder loader resized to the size our crops start from
    (input x augment.resize_ratio), then RandomCrop and RandomFlip mapped in parallel, as the Keras
    guides do it."""
    _need_folder(cfg, "Keras's image_dataset_from_directory")
    height, width, channels = cfg.model.input_shape
    ratio = training_augmentation(cfg).resize_ratio
    images = keras.utils.image_dataset_from_directory(
        folder_root(cfg) / "train", image_size=(round(height * ratio), round(width * ratio)),
        batch_size=cfg.trainer.batch_size, color_mode="grayscale" if channels == 1 else "rgb",
        seed=cfg.trainer.seed, verbose=False)
    layers = [keras.layers.RandomCrop(height, width, seed=cfg.trainer.seed)]
    if cfg.augment.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=cfg.trainer.seed))
    augmentation = keras.Sequential(layers)
    augmented = images.map(as_written(lambda x, y: (augmentation(x, training=True), y)), num_parallel_calls=AUTOTUNE)
    try:
        return timed_batches(augmented.repeat().prefetch(AUTOTUNE), cfg.bench.warmup_batches, cfg.bench.batches)
    except tf.errors.InvalidArgumentError as error:  # it has no way to skip a file it cannot decode
        reason = re.sub(r"\{\{.*?\}\}\s*", "", first_line(error.message))  # TF's {{function_node ...}}
        raise NotApplicable(f"Keras's folder loader stopped on an image it cannot decode: {reason}") from None


def folder_root(cfg: DictConfig) -> pathlib.Path:
    if cfg.data.name == "imagenette" and not cfg.data.root:
        return imagenette.default_root(imagenette.ARCHIVES[str(cfg.data.variant)])
    return pathlib.Path(cfg.data.root).expanduser()


def _need_folder(cfg: DictConfig, what: str) -> None:
    if cfg.data.name not in FOLDER_DATASETS:
        raise NotApplicable(f"data={cfg.data.name} has no image files for {what} "
                            f"(only {', '.join(FOLDER_DATASETS)} do)")


# --- model stages --------------------------------------------------------------------------------


def step(cfg: DictConfig, session: Session) -> tuple[int, float]:
    """The compiled training step as runner.training.loop.fit builds it (same strategy, XLA choice and
    steps per call), fed from a few batches held in memory: the model's own rate on this machine."""
    bench = cfg.bench
    train_steps = make_train_steps(session)
    per_call = session.training.steps_per_call
    held = _in_memory(session.splits.train, bench.memory_batches)
    iterator = iter(session.strategy.experimental_distribute_dataset(held))

    def call():  # the host reads the sums after every call, as fit does
        return {key: float(value) for key, value in train_steps(iterator, tf.constant(per_call)).items()}

    for _ in range(max(1, math.ceil(bench.warmup_steps / per_call))):
        call()
    calls = math.ceil(bench.step_batches / per_call)
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return calls * per_call * cfg.trainer.batch_size, time.perf_counter() - start


def _in_memory(train: tf.data.Dataset, batches: int) -> tf.data.Dataset:
    """`batches` batches of the pipeline as tensors, repeated without end."""
    taken = list(train.repeat().take(batches))
    images = tf.concat([images for images, _ in taken], 0)
    labels = tf.concat([labels for _, labels in taken], 0)
    batch_size = int(taken[0][1].shape[0])
    held = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size, drop_remainder=True)
    return held.cache().repeat().prefetch(AUTOTUNE)


def fit(cfg: DictConfig, session: Session, run: Optional[Run], folder: pathlib.Path) -> tuple[int, float]:
    """runner.training.loop.fit as the runner calls it: real batches from the pipeline, the standard
    callbacks (checkpoints, early stopping, plateau) and the MLflow recorder, on `run` or, when
    None, a run in a throwaway store under `folder`.

    The timed epoch's training loop (fit's own epoch_seconds) plus its share of the end-of-epoch
    hooks (Keras's progress bar included, which ends the callbacks): their time once per real epoch of
    the configured data (trainer.steps_per_epoch or the whole split), spread over the steps, so a
    short bench epoch does not count them more often than training does. Validation is left out (one
    batch is run; it is not training)."""
    fit_cfg = with_values(cfg, {"trainer.epochs": 2, "trainer.steps_per_epoch": cfg.bench.fit_steps})
    splits = load(fit_cfg)
    splits = dataclasses.replace(splits, val=splits.val.take(1), val_ten_crop=None)
    steps_run = epoch_steps(fit_cfg, splits)
    per_call = max(1, min(session.part.resolved.steps_per_execution, steps_run))
    short = dataclasses.replace(session, part=dataclasses.replace(session.part, cfg=fit_cfg), splits=splits,
                                training=dataclasses.replace(session.training, steps_per_epoch=steps_run,
                                                             steps_per_call=per_call))
    after_validation, after_hooks = _EpochEndClock(), _EpochEndClock()
    checkpoints = folder / "checkpoints"
    try:
        with _run_or_throwaway(fit_cfg, run, folder) as recorder:
            callbacks = [after_validation, *standard_callbacks(fit_cfg, folder)]
            history = loop.fit(short, loop.EpochHooks(callbacks, recorder=_Clocked(recorder, after_hooks))).history
    finally:
        shutil.rmtree(checkpoints, ignore_errors=True)  # VGG-16's weights are 0.5 GB a file
    if len(history.get("epoch_seconds", [])) < 2:
        raise NotApplicable("training stopped after its first epoch (trainer.early_stopping_patience?)")
    epoch_end = after_hooks.seconds[1] - after_validation.seconds[1]
    real_epoch = session.training.steps_per_epoch
    return steps_run * cfg.trainer.batch_size, history["epoch_seconds"][1] + epoch_end * steps_run / real_epoch


class _EpochEndClock(keras.callbacks.Callback):
    """When the end of an epoch reached it: first among the callbacks, or after the last hook."""

    def __init__(self):
        super().__init__()
        self.seconds: dict[int, float] = {}

    def on_epoch_end(self, epoch, logs=None):
        self.seconds[epoch] = time.perf_counter()


class _Clocked:
    """The recorder hook, then the clock: the last thing the loop does at an epoch's end."""

    def __init__(self, recorder: Run, clock: _EpochEndClock):
        self._recorder, self._clock = recorder, clock

    def log_epoch(self, epoch: int, logs: dict) -> None:
        self._recorder.log_epoch(epoch, logs)
        self._clock.on_epoch_end(epoch)


@contextlib.contextmanager
def _run_or_throwaway(cfg: DictConfig, run: Optional[Run], folder: pathlib.Path) -> Iterator[Run]:
    if run is not None:
        yield run
        return
    settings = {"tracking.uri": store_in(folder), "tracking.experiment": "bench"}
    # store_uri prefers MLFLOW_TRACKING_URI to tracking.uri: hide it, so nothing reaches the user's store.
    with environment_set(MLFLOW_TRACKING_URI=None), Run(with_values(cfg, settings)) as throwaway:
        yield throwaway
