"""Where a unit of a row looks in the image: the square of its receptive field (Zeiler & Fergus 2014,
Figure 2 crops each top image there), from the describe report's field and jump and the centre of
unit (0, 0) that builders/receptive_field.py computes with them.
"""

import dataclasses

import keras
import numpy as np

from builders import receptive_field

OUTSIDE = 0.5  # grey: the part of a square beyond the image (the padding the unit saw)


@dataclasses.dataclass(frozen=True)
class Placement:
    field: int  # r: input pixels per side one unit sees
    jump: int  # j: input pixels between neighbouring units
    centre: tuple[float, float]  # (y, x) in input pixels of unit (0, 0)'s square

    def box(self, y: int, x: int) -> tuple[int, int]:
        """(top, left) of unit (y, x)'s r x r square; it may reach past the image."""
        half = (self.field - 1) / 2
        return (round(self.centre[0] + y * self.jump - half), round(self.centre[1] + x * self.jump - half))


def placement(model: keras.Model, layer: keras.layers.Layer) -> Placement:
    """The field of `layer`'s output, a spatial map of `model` (whose layers are in the graph's order)."""
    fields = receptive_field.of_tensors(model.layers[1:], model.inputs[0], receptive_field.INPUT)
    field, jump, centre = fields[id(layer.output)]
    return Placement(field, jump, centre)


def cropped(image: np.ndarray, top: int, left: int, size: int, outside: float = OUTSIDE) -> np.ndarray:
    """image[top : top + size, left : left + size] of an [H, W, C] image, `outside` where the square
    leaves the image, so every crop of a row is the same r x r square."""
    crop = np.full((size, size, image.shape[-1]), outside, np.float32)
    height, width = image.shape[:2]
    rows = slice(max(top, 0), min(top + size, height))
    columns = slice(max(left, 0), min(left + size, width))
    if rows.start < rows.stop and columns.start < columns.stop:
        crop[rows.start - top : rows.stop - top, columns.start - left : columns.stop - left] = image[rows, columns]
    return crop
