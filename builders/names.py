"""Which row made a layer: the naming rule every block follows, and the one place that reads it.

A row as applied names each layer it makes `<row>` or `<row>_<suffix>`, as Keras Applications do:
`conv1` makes `conv1_pad`, `conv1_conv`, `conv1_bn`, `conv1_relu`; a pooling row is its one layer;
an inception module `inception_3a` makes `inception_3a_1x1_conv` ... `inception_3a_concat`. A row
with `repeat: n` is applied as `<name>_block1` ... `<name>_block<n>`, so ResNet's layers are Keras
Applications' own (`conv3_block2_1_conv`, `conv3_block1_0_conv` for a projection, `conv3_block2_out`).

Row names may extend one another (GoogLeNet's `conv2` and `conv2_reduce`), so a layer is the row's
whose name is its longest such prefix. `check` holds every model `build` makes to that rule, so a
saved model read back without rebuilding it (`python -m runner.visualize`) maps its layers onto the
rows of its spec by name alone, exactly: `layers_by_row`.
"""

import dataclasses
from collections.abc import Collection, Sequence
from typing import NoReturn

import keras

from builders.errors import SpecError
from builders.rows import Application, AppliedRow


def repeated(name: str, number: int) -> str:
    """The name of application `number` (from 1) of a row `name` with `repeat` > 1."""
    return f"{name}_block{number}"


def row_of_layer(layer_name: str, row_names: Collection[str]) -> str | None:
    """The row that made layer `layer_name`: the longest row name equal to it or followed by '_'."""
    cut = len(layer_name)
    while cut > 0:
        if layer_name[:cut] in row_names:
            return layer_name[:cut]
        cut = layer_name.rfind("_", 0, cut)
    return None


@dataclasses.dataclass(frozen=True)
class RowLayers:
    application: Application
    layers: tuple[keras.layers.Layer, ...]  # in the model's order, which is the graph's: output last
    output: keras.layers.Layer  # the row's one layer that no other layer of the row consumes


def layers_by_row(model: keras.Model, applications: Sequence[Application]) -> dict[str, RowLayers]:
    """Each application of `applications` (a spec's `plan`), in order, with the layers of `model` it made.

    Every layer but the input belongs to exactly one row; a model and a plan that disagree (a
    model saved from another version of the spec) raise SpecError.
    """
    members: dict[str, list[keras.layers.Layer]] = {application.name: [] for application in applications}
    for layer in _block_layers(model):
        row = row_of_layer(layer.name, members)
        if row is None:
            raise SpecError(f"layer {layer.name!r} of model {model.name!r} is named after no row of the spec "
                            "(a row names its layers <row> or <row>_<suffix>): is the model from another "
                            "version of the spec?")
        members[row].append(layer)
    return {application.name: _row_layers(application, members[application.name])
            for application in applications}


def check(model: keras.Model, rows: Sequence[AppliedRow]) -> None:
    """That `layers_by_row` gives back, for each row `build` applied, exactly the layers it made.

    A layer given by its name to the wrong row reads a tensor from outside that row, or leaves its
    own row without the output the builder returned; either fails here with a SpecError.
    """
    applied_rows = {applied.application.name: applied for applied in rows}
    layers = _block_layers(model)
    owners = {id(layer.output): row_of_layer(layer.name, applied_rows) for layer in layers}
    for layer in layers:
        applied = applied_rows.get(owners[id(layer.output)])
        if applied is None:
            continue  # named after no row: layers_by_row below says so
        for tensor in keras.tree.flatten(layer.input):
            if tensor is not applied.inputs and owners.get(id(tensor)) != applied.application.name:
                _clash(applied.application, f"layer {layer.name!r} is named as its own but reads another row's")
    by_row = layers_by_row(model, [applied.application for applied in rows])  # a layer of no row fails here
    for applied in rows:
        output = by_row[applied.application.name].output
        if output.output is not applied.output:
            _clash(applied.application, f"its output by the names is layer {output.name!r}, not the block's")


def _block_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def _row_layers(application: Application, layers: list[keras.layers.Layer]) -> RowLayers:
    where = f"{application.path} ({application.name})"
    if not layers:
        raise SpecError(f"{where}: the model has no layer of this row; "
                        "was it built from another version of the spec?")
    consumed = {id(tensor) for layer in layers for tensor in keras.tree.flatten(layer.input)}
    outputs = [layer for layer in layers if id(layer.output) not in consumed]
    if len(outputs) != 1:
        raise SpecError(f"{where}: the row's layers end in {len(outputs)} outputs "
                        f"({', '.join(layer.name for layer in outputs)}), not one")
    return RowLayers(application, tuple(layers), outputs[0])


def _clash(application: Application, what: str) -> NoReturn:
    raise SpecError(f"{application.path}.name: {application.name!r} collides with another row's layer names: "
                    f"{what}; rename a row so that no row's name begins another's layer names")
