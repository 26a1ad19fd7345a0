"""The article's tables: each row as applied, with its feature maps, parameters and MACs.

MACs (multiply-accumulates) count the convolutions and dense layers for one image, as the papers
do (GoogLeNet's Table 1 "ops"); normalisation, pooling and activations are not counted.

Receptive field and jump: what one unit of the row's output sees of the input, and how many input
pixels apart its neighbours are (see `receptive_field.py`); None for rows without a spatial map
(global average pooling, flatten, dense, auxiliary classifiers), which see the whole input.
"""

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import keras

from builders import geometry, names, receptive_field
from builders.rows import AppliedRow, BuiltModel


@dataclasses.dataclass
class LayerRow:
    name: str
    type: str
    input_shape: list[int]
    output_shape: list[int]
    params: int
    macs: int
    kernel: int | None = None
    stride: int | None = None
    padding: str | int | None = None
    size_rule: str | None = None  # how the output size follows from the input, kernel, stride, padding
    receptive_field: int | None = None  # input pixels per side one output unit sees; None: global
    jump: int | None = None  # input pixels between neighbouring output units; None: global


@dataclasses.dataclass
class Report:
    model: str
    input_shape: list[int]
    total_params: int
    trainable_params: int
    macs: int
    inference_macs: int  # without side outputs (GoogLeNet's auxiliary heads exist only in training)
    layers: list[LayerRow]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for row in data["layers"]:
            row["output_shape"] = [None, *row["output_shape"]]  # docs/architecture.md, "Public contracts"
        return data


def report(built: BuiltModel) -> Report:
    rows, field = [], receptive_field.INPUT
    by_row = names.layers_by_row(built.model, [applied.application for applied in built.rows])
    for applied in built.rows:
        layer_row, output_field = _layer_row(applied, by_row[applied.application.name].layers, field)
        rows.append(layer_row)
        if not applied.application.block.side_output:  # a side output leaves the main path as it was
            field = output_field
    model = built.model
    return Report(
        model=model.name,
        input_shape=list(model.inputs[0].shape[1:]),
        total_params=model.count_params(),
        trainable_params=sum(math.prod(weight.shape) for weight in model.trainable_weights),
        macs=sum(row.macs for row in rows),
        inference_macs=sum(row.macs for row, applied in zip(rows, built.rows)
                           if not applied.application.block.side_output),
        layers=rows,
    )


def _layer_row(row: AppliedRow, layers: Sequence[keras.layers.Layer],
               field: receptive_field.Field) -> tuple[LayerRow, receptive_field.Field]:
    """The row's line of the report, and the receptive field of its output given its input's.

    `layers` are the ones the row made, in the graph's order (`names.layers_by_row`).
    """
    application = row.application
    output_field = receptive_field.of_layers(layers, row.inputs, field)
    result = LayerRow(
        name=application.name,
        type=application.block.type,
        input_shape=list(row.inputs.shape[1:]),
        output_shape=list(row.output.shape[1:]),
        params=sum(layer.count_params() for layer in layers),
        macs=sum(_macs(layer) for layer in layers),
    )
    if output_field:
        result.receptive_field, result.jump, _ = output_field  # its centre: visualize's crops
    shape_rule = geometry.of_row(application.block, application.args)
    if shape_rule:
        result.kernel, result.stride, result.padding = shape_rule.kernel, shape_rule.stride, shape_rule.padding
        result.size_rule = shape_rule.rule(result.input_shape[0])
    return result, output_field


def _conv_macs(layer) -> int:
    kernel_h, kernel_w = layer.kernel_size
    in_channels = layer.input.shape[-1]
    return math.prod(layer.output.shape[1:]) * kernel_h * kernel_w * in_channels // layer.groups


def _dense_macs(layer) -> int:
    return math.prod(layer.input.shape[1:]) * layer.units


MAC_COUNTERS = {keras.layers.Conv2D: _conv_macs, keras.layers.Dense: _dense_macs}


def _macs(layer) -> int:
    counter = MAC_COUNTERS.get(type(layer))
    return counter(layer) if counter else 0
