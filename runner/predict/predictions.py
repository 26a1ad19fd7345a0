"""Prediction: a stand-alone model (runner/session/stand_alone.py: a run's, a file's, or published
weights) on image files, read as an evaluation reads its validation images (the same decoding, resize
and centre crop, in tf.data), the crop as the weights' card states it."""

import csv
import dataclasses
import glob
import logging
import os
import pathlib

import keras
import numpy as np
from omegaconf import DictConfig
from tabulate import tabulate

import builders  # noqa: F401  (registers its layers, LRN and the padded pools, which saved models use)
from runner import disk, progress
from runner.config.bounds import check_bounds
from runner.config.schema import PredictConfig
from runner.data import augment, pipeline, source, unreadable
from runner.data.folders import IMAGE_SUFFIXES
from runner.data.splits import DEFAULT_CROP
from runner.mistakes.errors import UserError
from runner.session.stand_alone import stand_alone

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Predictions:
    files: list[str]  # in the order found (a folder's, sorted)
    top: list[list[tuple[str, float]]]  # per file: (class name, probability), rank 1 first
    skipped: dict[str, str]  # {file: why it cannot be decoded}


def predict(cfg: DictConfig) -> Predictions:
    options = cfg.predict
    check_bounds(options, PredictConfig, "predict")
    if options.output:
        _check_output(pathlib.Path(options.output))
    files = image_files(options.images)
    skipped = unreadable.find(files, cfg.data.max_pixels)  # before the model: the cheaper mistake first
    readable = [file for file in files if file not in skipped]
    if not readable:
        first = min(skipped)
        raise UserError(f"predict.images={options.images}: none of its {len(files)} image files can be read "
                        f"({first}: {skipped[first]})")
    chosen = stand_alone(cfg, "predict.model")
    card = chosen.card
    if card is None or card.class_names is None:
        given = f"predict.model={options.model}" if options.model else f"model.weights={cfg.model.weights}"
        raise UserError(f"{given}: the model does not name its classes (saved before models carried them, or "
                        "weights without a card); train it again, or give weights that name them")
    if skipped:
        log.warning("skipping %d unreadable image files: %s", len(skipped),
                    "; ".join(f"{file} ({why})" for file, why in sorted(skipped.items())))
    resize_ratio = cfg.eval.resize_ratio or card.resize_ratio or DEFAULT_CROP
    probabilities = _probabilities(chosen.model, readable, resize_ratio, options.batch_size)
    ranked = np.argsort(-probabilities, axis=1, kind="stable")[:, : options.top_k]
    top = [[(card.class_names[index], float(row[index])) for index in order]
           for row, order in zip(probabilities, ranked)]
    return Predictions(readable, top, skipped)


def _check_output(path: pathlib.Path) -> None:
    """predict.output is a file that can be written, checked before the model loads."""
    if path.is_dir():
        raise UserError(f"predict.output={path} is a folder; give the .csv file to write, e.g. "
                        f"{path / 'predictions.csv'}")
    unwritable = disk.unwritable(path.parent)
    if unwritable:
        raise UserError(f"predict.output={path}: {unwritable} is not writable; give a file in a folder you can "
                        "write to")


def image_files(pattern: str | None) -> list[str]:
    """predict.images as a list of files: the file itself, a folder's images (recursively, sorted),
    or a glob's matches (sorted)."""
    if not pattern:
        raise UserError("predict.images is not set; give an image file, a folder or a glob ('photos/*.jpg')")
    path = pathlib.Path(pattern).expanduser()
    if path.is_file():
        return [str(path)]
    if path.is_dir():
        found = [os.path.join(folder, name) for folder, _, names in os.walk(path, followlinks=False)
                 for name in names if pathlib.Path(name).suffix.lower() in IMAGE_SUFFIXES]
    else:
        found = [match for match in glob.glob(str(path), recursive=True) if os.path.isfile(match)]
    if not found:
        raise UserError(f"predict.images={pattern}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) there")
    return sorted(found)


def write(predictions: Predictions, options: DictConfig) -> str:
    """The CSV at predict.output (written whole, then renamed into place), or a table to print."""
    if options.output:
        path = pathlib.Path(options.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        with disk.written_whole(path) as partial, open(partial, "w", newline="") as file:  # a stop leaves none
            writer = csv.writer(file)
            writer.writerow(["file", "rank", "class", "probability"])
            for name, top in zip(predictions.files, predictions.top):
                writer.writerows([name, rank, label, f"{probability:.6f}"] for rank, (label, probability)
                                 in enumerate(top, start=1))
        note = _skipped_note(predictions)
        return f"wrote {path}: {len(predictions.files)} images" + (f"; {note}" if note else "")
    rows = [[name, ", ".join(f"{label} {probability:.3f}" for label, probability in top)]
            for name, top in zip(predictions.files, predictions.top)]
    note = _skipped_note(predictions)
    return tabulate(rows, headers=["file", "top classes (probability)"]) + (f"\n{note}" if note else "")


def _skipped_note(predictions: Predictions) -> str:
    return f"skipped {len(predictions.skipped)} unreadable: {', '.join(sorted(predictions.skipped))}" \
        if predictions.skipped else ""


def _probabilities(model: keras.Model, files: list[str], resize_ratio: float, batch_size: int) -> np.ndarray:
    height, width, channels = model.input_shape[1:]
    examples = source.files(files, np.zeros(len(files), np.int32), channels)
    batches = pipeline.evaluation(examples, augment.centre_crop((height, width), resize_ratio),
                                  batch_size=batch_size)
    # Keras's progress bar when there is more than one batch to wait for.
    bar = progress.bar(len(files), unit_name="image") if len(files) > batch_size else None
    outputs = []
    for images, _ in batches:
        outputs.append(model.predict_on_batch(images))
        if bar:
            bar.add(len(images))
    return np.concatenate(outputs) if outputs else np.zeros((0, model.output_shape[-1]), np.float32)
