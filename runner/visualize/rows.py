"""A model's rows (as `python -m runner.describe` names them) mapped onto the layers of a saved model.

builders/model.py names a row's layers after the row: `conv1` makes `conv1_pad`, `conv1_conv`,
`conv1_bn`, `conv1_relu`; a residual block `conv3_1` makes `conv3_1_1_conv` ... `conv3_1_out`; an
inception module `inception_3a_1x1_conv` ... `inception_3a_concat`; single-layer rows are named as
the row. So a layer belongs to the row whose name is its longest prefix (`conv2_reduce_conv` is
conv2_reduce's, not conv2's), and the row's output is its layer that no other layer of the row
consumes. No model is rebuilt: a 224 VGG would cost seconds and half a gigabyte for its names.
"""

import dataclasses
from typing import Any, Mapping

import keras

from builders.model import plan
from runner.errors import UserError


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
    """The main-path rows of `spec` as applied (side outputs left out), in order, on `model`'s layers."""
    applications = plan(spec)
    names = [application.name for application in applications]
    members: dict[str, list[keras.layers.Layer]] = {name: [] for name in names}
    for layer in model.layers:
        owners = [name for name in names if layer.name == name or layer.name.startswith(name + "_")]
        if owners:
            members[max(owners, key=len)].append(layer)
    rows = []
    for application in applications:
        if application.block.side_output:
            continue
        layers = members[application.name]
        if not layers:
            raise UserError(f"the saved model has no layer of row {application.name} ({application.path}): "
                            "was it trained from another version of the model's config?")
        rows.append(Row(application.name, application.block.type, _output_layer(layers),
                        any(isinstance(layer, keras.layers.Conv2D) for layer in layers)))
    return rows


def _output_layer(layers: list[keras.layers.Layer]) -> keras.layers.Layer:
    consumed = {id(tensor) for layer in layers for tensor in keras.tree.flatten(layer.input)}
    sinks = [layer for layer in layers if id(layer.output) not in consumed]
    return sinks[-1]


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


def _shape(row: Row) -> str:
    return "x".join(str(size) for size in row.layer.output.shape[1:])
