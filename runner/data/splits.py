"""The splits of a config: its source's examples, cropped, batched and ready for the steps."""

import dataclasses
from collections.abc import Collection
from typing import Callable, Optional

import tensorflow as tf
from omegaconf import DictConfig

from runner.config.bounds import Choices
from runner.data import augment, balance, cache_files, digits, folders, imagenette, pipeline, synthetic
from runner.data import colour, colour_statistics
from runner.data import source as source_module
from runner.mistakes.errors import UserError

SOURCES = Choices("data.name", "dataset", {
    "digits": digits.from_config,
    "imagenette": imagenette.from_config,
    "imagenet": folders.from_config,
    "folder": folders.from_config,
    "synthetic": synthetic.from_config,
})
ALL_SPLITS = ("train", "val")
DEFAULT_CROP = 256 / 224  # eval.resize_ratio unset, and no weights' card saying another: the 224 of a 256


@dataclasses.dataclass
class Splits:
    # (images uint8 [B, H, W, C], labels int32 [B]); one epoch per iteration, reshuffled each time,
    # only full batches. None when only val was asked for (evaluation, figures).
    train: tf.data.Dataset | None
    val: tf.data.Dataset  # centre crops, every example once, the last batch possibly smaller
    val_ten_crop: tf.data.Dataset | None  # eval.ten_crop: (images [B, 10, H, W, C], labels [B])
    val_scales: tf.data.Dataset | None  # eval.scales: (images [B, len(scales), H, W, C], labels [B])
    class_names: list[str]
    class_ids: list[str]  # as the files name them (ImageNet-style folders: WordNet ids), else the names
    train_examples: int  # in this worker's shard under multi_worker, as val_examples
    val_examples: int
    steps_per_epoch: int  # full batches an epoch holds (under multi_worker: on every worker)
    class_counts: list[int]  # training images per class, in label order (every worker's); [] without train
    skipped_files: dict[str, str]  # {file: why it cannot be decoded}, left out of both splits
    normalise: Callable[[tf.Tensor], tf.Tensor]  # uint8 images -> what the model takes (pipeline.Preprocessing)


def load(cfg: DictConfig, shard: Optional[source_module.Shard] = None,
         preprocessing: Optional[pipeline.Preprocessing] = None, splits: Collection[str] = ALL_SPLITS) -> Splits:
    """The splits of cfg.data, shaped for cfg.model.input_shape, in batches of cfg.trainer.batch_size
    (global), augmented by cfg.augment and evaluated as cfg.eval says. With a `shard` (multi_worker),
    this worker's share of both splits, in batches of shard.batch_size (per replica). They normalise
    as `preprocessing` says (the weights' and the data's, resolved by runner.weights), else as
    data.mean and data.std, else with ImageNet's statistics. `splits` without train (evaluation,
    figures): the training images are neither listed nor decoded, and a folder may hold val/ alone."""
    crop, augmentation = evaluation_crop(cfg), training_augmentation(cfg)
    augment.check_ratio("augment.resize_ratio", augmentation.resize_ratio)
    augment.check_ratio("eval.resize_ratio", crop)
    kept_ratio = augment.cache_ratio(augmentation)  # data.cache's; refuses a scale_range no crop fits
    height, width, channels = cfg.model.input_shape
    size, batch_size = (height, width), cfg.trainer.batch_size
    training = "train" in splits
    source = SOURCES.of(cfg.data.name)(cfg, training)
    _check_num_classes(cfg.data, len(source.class_names))
    # From every worker's images, before sharding: every worker then recolours alike.
    recolour = _recolouring(augmentation, source.train, channels) if training else None
    train_count = source.train.count if training else 0
    counts = balance.class_counts(source.train.labels, len(source.class_names)) if training else []
    steps_per_epoch = train_count // batch_size
    if shard:
        # The smallest shard decides: every worker must run every step (its collectives wait for all).
        steps_per_epoch = (train_count // shard.count) // (shard.batch_size * shard.replicas)
        source = dataclasses.replace(source, train=source_module.sharded(source.train, shard) if training else None,
                                     val=source_module.sharded(source.val, shard))
        batch_size = shard.batch_size
    if training and source.train.count < batch_size:
        raise UserError(f"data has {source.train.count} training images, "
                        f"fewer than trainer.batch_size={batch_size}")
    normalise = pipeline.normaliser(preprocessing or data_preprocessing(cfg.data), channels)
    cache = cfg.data.cache
    folder = cache_files.cache_folder(cfg.data.cache_dir) if cache else None
    train = pipeline.training(
        source.train, augment.training(augmentation, size, recolour), batch_size=batch_size, seed=cfg.trainer.seed,
        shuffle_buffer=cfg.data.shuffle_buffer,
        cache_view=augment.resized(size, kept_ratio) if cache else None,
        cache_file=cache_files.cache_file(folder, "train"),
        balanced=balance.BALANCED.of(cfg.data.sampling)) if training else None
    # One cache serves the centre crops and the ten crops.
    val = (pipeline.cached(source.val, augment.resized(size, crop),
                           filename=cache_files.cache_file(folder, "val")) if cache else source.val)
    return Splits(
        train=train,
        val=pipeline.evaluation(val, augment.centre_crop(size, crop), batch_size=batch_size),
        val_ten_crop=(pipeline.evaluation(val, augment.ten_crop(size, crop), batch_size=batch_size)
                      if cfg.eval.ten_crop else None),
        val_scales=_several_scales(cfg, source.val, size, batch_size),
        class_names=source.class_names,
        class_ids=source.class_folders or source.class_names,
        train_examples=source.train.count if training else 0,
        val_examples=source.val.count,
        steps_per_epoch=steps_per_epoch,
        class_counts=counts,
        skipped_files=source.skipped,
        normalise=normalise,
    )


def _recolouring(augmentation: DictConfig, examples: source_module.Examples, channels: int):
    """augment.pca_lighting's and augment.photometric's recolouring (runner/data/colour.py), None when off;
    the PCA lighting's components come from the training images."""
    components = colour_statistics.principal_components(examples, channels) if augmentation.pca_lighting else None
    return colour.recolouring(augmentation, components, channels)


def _several_scales(cfg: DictConfig, examples: source_module.Examples, size, batch_size: int):
    """eval.scales' centre crops, read from the source (data.cache keeps one scale, not several)."""
    if cfg.eval.scales is None:
        return None
    ratios = augment.side_ratios("eval.scales", cfg.eval.scales)
    return pipeline.evaluation(examples, augment.centre_crops(size, ratios), batch_size=batch_size)


def _check_num_classes(data: DictConfig, found: int) -> None:
    """A classifier of other than the data's classes trains without error, and wrongly: labels past
    its last logit are never predicted (the folder sources say so of their folders first)."""
    if data.num_classes != found:
        raise UserError(f"data.num_classes={data.num_classes} but data={data.name} has {found} classes; "
                        f"pass data.num_classes={found}")


def evaluation_crop(cfg: DictConfig) -> float:
    """eval.resize_ratio, or where unset the default (a set-up with weights has set their card's)."""
    return DEFAULT_CROP if cfg.eval.resize_ratio is None else cfg.eval.resize_ratio


def training_augmentation(cfg: DictConfig) -> DictConfig:
    """cfg.augment, whose resize_ratio, where unset (augment=none follows eval.resize_ratio), is the
    evaluation's crop: training then sees the images as evaluation does."""
    if cfg.augment.resize_ratio is not None:
        return cfg.augment
    resolved = cfg.augment.copy()
    resolved.resize_ratio = evaluation_crop(cfg)
    return resolved


def data_preprocessing(data: DictConfig) -> pipeline.Preprocessing:
    """data.mean and data.std, each defaulting to ImageNet's."""
    mean = pipeline.IMAGENET.mean if data.mean is None else tuple(data.mean)
    std = pipeline.IMAGENET.std if data.std is None else tuple(data.std)
    return pipeline.Preprocessing(mean, std)
