"""The one pass over the validation images: the first few kept to show, every one scored on the top
row's channels (its peak, before a saturating activation: scores.py), the channels ranked."""

import dataclasses
from collections.abc import Callable, Iterable, Sequence

import keras
import numpy as np

from runner.mistakes.errors import UserError
from runner.progress import bar as progress_bar
from runner.visualize.scores import scored_unit


@dataclasses.dataclass
class Scan:
    shown: np.ndarray  # the first `images` images, normalised as the model takes them
    labels: list[str]  # their class names
    pictures: np.ndarray  # every scanned image as the pipeline gave it: uint8 [N, H, W, C], shown ones first
    peaks: np.ndarray  # [N, channels]: each image's score in each channel of the top row (its peak)
    where: np.ndarray  # [N, channels]: the peak's position, flattened over the top row's height x width
    scored_before: str | None  # the saturating activation the scores were taken before, if any

    def drawn(self, index) -> np.ndarray:
        """The scanned picture(s) at `index` (an int, a slice or an index array) for drawing: float in [0, 1]."""
        return self.pictures[index].astype(np.float32) / 255

    def best(self, channel: int, count: int) -> np.ndarray:
        """The indices of the `count` scanned images where `channel` scores highest, best first."""
        return np.argsort(-self.peaks[:, channel], kind="stable")[:count]

    def ranked_channels(self, top_k: int) -> np.ndarray:
        """Channels by the mean of their top_k highest scores over the images, strongest first."""
        strongest = np.sort(self.peaks, axis=0)[-min(top_k, len(self.peaks)):]
        return np.argsort(-strongest.mean(axis=0), kind="stable")

    def score_name(self) -> str:
        return f"score: peak before {self.scored_before}" if self.scored_before else "score: peak activation"


def scan(probe: keras.Model, batches: Iterable, class_names: Sequence[str], normalise: Callable,
         shown_count: int, scanned_count: int, progress: bool = False) -> Scan:
    """`batches` yields (uint8 images [B, H, W, C], labels [B]); read until max(shown, scanned) images.
    `probe` maps images to the top row's output; `normalise`, uint8 images to what it takes. `progress`:
    Keras's progress bar over the images (hundreds through a deep network take a while on a CPU)."""
    wanted = max(shown_count, scanned_count)
    shown, labels, pictures, peaks, where, seen = [], [], [], [], [], 0
    bar = progress_bar(wanted, unit_name="image") if progress else None
    with scored_unit(probe) as scored_before:
        for batch, batch_labels in batches:
            batch = np.asarray(batch)[: wanted - seen]
            images = keras.ops.convert_to_numpy(normalise(batch))
            if shown_count > seen:
                shown.append(images[: shown_count - seen])
                labels += [class_names[int(label)] for label in np.asarray(batch_labels)[: shown_count - seen]]
            maps = keras.ops.convert_to_numpy(probe(images, training=False))
            flat = maps.reshape(len(maps), -1, maps.shape[-1])  # [B, positions, channels]
            peaks.append(flat.max(axis=1))
            where.append(flat.argmax(axis=1))
            pictures.append(batch)
            seen += len(images)
            if bar:
                bar.update(seen, finalize=seen >= wanted)
            if seen >= wanted:
                break
    if not seen:
        raise UserError("the validation split has no images to visualise")
    return Scan(np.concatenate(shown), labels, np.concatenate(pictures), np.concatenate(peaks),
                np.concatenate(where), scored_before)
