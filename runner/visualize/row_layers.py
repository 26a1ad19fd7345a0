"""A model's rows (as `python -m runner.describe` names them) mapped onto the layers of a saved model.

The map is the builders' naming rule (`builders.names.layers_by_row`): every layer of a built model
is named after the row as applied that made it (`conv1_conv`, `conv3_block1_1_conv`,
`inception_3a_1x1_conv`), and its output layer is the one no other layer of the row consumes. No
model is rebuilt: a 224 VGG would cost seconds and half a gigabyte for its names.
"""

import dataclasses
from typing import Any, Mapping

import keras

from builders.model import plan
from builders.names import layers_by_row
from runner.mistakes.errors import UserError


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    type: str
    layer: keras.layers.Layer  # the layer whose output is the row's output
    has_conv: bool  # the row holds a Conv2D (its own, or in a block)

    @property
    def spatial(self) -> bool:
        return len(self.layer.output.shape) == 4  # [batch, height, width, channels]


def model_rows(model: keras.Model, spec: Mapping[str, Any]) -> list[Row]:
    """The main-path rows of `spec` as applied (side outputs left out), in order, on `model`'s layers.

    A model saved from another version of the spec raises builders' SpecError (one line, as a UserError).
    """
    rows = []
    for row in layers_by_row(model, plan(spec)).values():
        if row.application.block.side_output:
            continue
        has_conv = any(isinstance(layer, keras.layers.Conv2D) for layer in row.layers)
        rows.append(Row(row.application.name, row.application.block.type, row.output, has_conv))
    return rows


def default_rows(rows: list[Row]) -> list[Row]:
    """The first and the middle convolution rows and the last spatial row (each once)."""
    spatial = [row for row in rows if row.spatial]
    convolutions = [row for row in spatial if row.has_conv] or spatial
    chosen = [convolutions[0], convolutions[len(convolutions) // 2], spatial[-1]]
    return [row for index, row in enumerate(chosen) if row not in chosen[:index]]


def pick(rows: list[Row], name: str, key: str, model: keras.Model) -> Row:
    """Row `name` (or, failing that, the model's layer `name`), which must give feature maps."""
    spatial = [row.name for row in rows if row.spatial]
    row = next((row for row in rows if row.name == name), None)
    if row is None:
        layer = next((layer for layer in model.layers if layer.name == name), None)
        if layer is None:
            raise UserError(f"{key}: the model has no row or layer {name!r}; spatial rows: {', '.join(spatial)}")
        row = Row(name, type(layer).__name__, layer, isinstance(layer, keras.layers.Conv2D))
    if not row.spatial:
        raise UserError(f"{key}: {name} gives a {_shape(row)} vector, not feature maps; "
                        f"spatial rows: {', '.join(spatial)}")
    return row


def explained_row(model: keras.Model, spec: Mapping[str, Any], name: str | None, key: str) -> Row:
    """The main-path row `name` (describe's names only) whose feature maps Grad-CAM weighs; None: the last
    convolution row, as Selvaraju et al. (2017, Section 3) take the last convolutional layer's maps."""
    rows = model_rows(model, spec)
    spatial = [row for row in rows if row.spatial]
    if name is None:
        return ([row for row in spatial if row.has_conv] or spatial)[-1]
    choices = ", ".join(row.name for row in spatial)
    if name in _side_rows(model, spec):
        raise UserError(f"{key}: {name} is an auxiliary head's row, which the class score does not pass through; "
                        f"rows: {choices}")
    row = next((row for row in rows if row.name == name), None)
    if row is None:
        raise UserError(f"{key}: the model has no row {name!r}; rows: {choices}")
    if not row.spatial:
        raise UserError(f"{key}: {name} gives a {_shape(row)} vector (after global pooling or flattening), "
                        f"not feature maps; rows: {choices}")
    return row


def _side_rows(model: keras.Model, spec: Mapping[str, Any]) -> list[str]:
    return [name for name, row in layers_by_row(model, plan(spec)).items() if row.application.block.side_output]


def _shape(row: Row) -> str:
    return "x".join(str(size) for size in row.layer.output.shape[1:])
