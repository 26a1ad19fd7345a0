"""Occlusion sensitivity (Zeiler & Fergus 2014, Section 4.2, Figure 7): is the network classifying the
object, or its surroundings? A grey square slides over the image, and at each position the model's
probability of the true class and its most probable class are mapped.

The grey is the dataset's mean pixel: the images are normalised to zero mean, so the square is zeros
after normalisation. Its side and stride are fractions of the image's side (visualize.occlusion_size,
visualize.occlusion_stride); cell (i, j) of a map is the square whose top left corner is at
(i * stride, j * stride). All positions of one image go through the model in batches of
visualize.batch_size, so an image costs (positions / batch_size) forward passes, not one per position.
"""

import dataclasses
import pathlib
from collections.abc import Mapping, Sequence

import keras
import numpy as np

from runner.mistakes.errors import UserError
from runner.visualize import figures
from runner.visualize.classes import Classes
from runner.visualize.scan import Scan

CAPTION = ("A grey square slides over the image: the middle map is the true class's probability with the "
           "square at each place (dark: that place matters), the right one the class then predicted (a colour "
           "per class, named above).")
CLASS_COLOURS = "tab20"  # the most-predicted class map: class k in colour k % 20


@dataclasses.dataclass
class Occlusion:
    probability: np.ndarray  # [rows, columns] the true class's probability, the square at each position
    predicted: np.ndarray  # [rows, columns] the most probable class there


def check_fractions(options: Mapping) -> None:
    """visualize.occlusion_size and occlusion_stride must be fractions of the image's side, in (0, 1]."""
    for key in ("occlusion_size", "occlusion_stride"):
        if not 0 < options[key] <= 1:
            raise UserError(f"visualize.{key}={options[key]}: expected a fraction of the image's side, in (0, 1]")


def positions(side: int, size: float, stride: float) -> tuple[int, list[int]]:
    """(the square's side in pixels, the starts of its positions) along an image side of `side` pixels."""
    pixels, step = max(1, round(size * side)), max(1, round(stride * side))
    return pixels, list(range(0, side - pixels + 1, step))


def occlude(classify: keras.Model, image: np.ndarray, label: int, size: float, stride: float,
            batch_size: int) -> Occlusion:
    """The maps of one normalised image [H, W, C] whose true class is `label`."""
    height, width = image.shape[:2]
    square_height, tops = positions(height, size, stride)
    square_width, lefts = positions(width, size, stride)
    corners = [(top, left) for top in tops for left in lefts]
    probabilities = []
    for start in range(0, len(corners), batch_size):
        batch = np.repeat(image[None], len(corners[start:start + batch_size]), axis=0)
        for copy, (top, left) in zip(batch, corners[start:start + batch_size]):
            copy[top:top + square_height, left:left + square_width] = 0.0  # the mean pixel, normalised
        scores = keras.tree.flatten(classify(batch, training=False))[0]
        probabilities.append(keras.ops.convert_to_numpy(keras.ops.softmax(keras.ops.cast(scores, "float32"))))
    probabilities = np.concatenate(probabilities).reshape(len(tops), len(lefts), -1)
    return Occlusion(probabilities[..., label], probabilities.argmax(axis=-1))


def figure(model: keras.Model, scan: Scan, classes: Classes, options: Mapping, folder: pathlib.Path) -> pathlib.Path:
    """occlusion.png: a line per shown image: the image, the true class's probability map (viridis)
    and the most probable class's map, labelled with the classes it shows, the commonest first. An image
    whose label is none of the classifier's classes (weights on other data) maps its predicted class's."""
    size, stride, batch_size = options["occlusion_size"], options["occlusion_stride"], options["batch_size"]
    square, _ = positions(scan.shown.shape[1], size, stride)
    grid = figures.Grid(len(scan.shown), 3, f"{model.name}: a grey {square}-pixel square slides over\nthe "
                                            "image (Zeiler & Fergus 2014, Fig. 7)", footer=figures.CAPTION)
    pictures = scan.drawn(slice(len(scan.shown)))
    scores = keras.tree.flatten(model(scan.shown, training=False))[0]
    predicted = np.argmax(keras.ops.convert_to_numpy(scores), axis=1)
    for line, label in enumerate(scan.labels):
        true = classes.index(label)
        mapped = predicted[line] if true is None else true
        maps = occlude(model, scan.shown[line], mapped, size, stride, batch_size)
        grid.tile(line, 0, figures.picture(pictures[line]), label)
        low, high = float(maps.probability.min()), float(maps.probability.max())
        # Each map on its own scale, from its lowest (dark) to its highest: the label gives both. Whose
        # probability: the true class's, named at the image, else (weights on other data) the predicted one's.
        whose = "p" if true is not None else classes.names[mapped][:5]
        grid.tile(line, 1, maps.probability, f"{whose} {low:.2f}-{high:.2f}".replace("0.", "."), cmap="viridis",
                  vmin=low, vmax=high)
        grid.tile(line, 2, maps.predicted % 20, _commonest(maps.predicted, classes.names), cmap=CLASS_COLOURS,
                  vmax=19)
    grid.caption(CAPTION)
    return grid.save(folder / "occlusion.png")


def _commonest(predicted: np.ndarray, class_names: Sequence[str]) -> str:
    found, counts = np.unique(predicted, return_counts=True)
    return " ".join(class_names[index][:6] for index in found[np.argsort(-counts, kind="stable")][:2])
