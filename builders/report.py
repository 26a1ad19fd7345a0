"""The article's tables: each row as applied, with its feature maps, parameters and MACs.

MACs (multiply-accumulates) count the convolutions and dense layers for one image, as the papers
do (GoogLeNet's Table 1 "ops"); normalisation, pooling and activations are not counted.
"""

import dataclasses
import math
from typing import Any

import keras

from builders import geometry
from builders.model import AppliedRow, BuiltModel


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
            row["output_shape"] = [None, *row["output_shape"]]  # DESIGN: may lead with the batch
        return data


def report(built: BuiltModel) -> Report:
    rows = [_layer_row(row) for row in built.rows]
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


def _layer_row(row: AppliedRow) -> LayerRow:
    application = row.application
    layers = _layers_of(row)
    result = LayerRow(
        name=application.name,
        type=application.block.type,
        input_shape=list(row.inputs.shape[1:]),
        output_shape=list(row.output.shape[1:]),
        params=sum(layer.count_params() for layer in layers),
        macs=sum(_macs(layer) for layer in layers),
    )
    shape_rule = geometry.of_row(application.block.type, application.args)
    if shape_rule:
        result.kernel, result.stride, result.padding = shape_rule.kernel, shape_rule.stride, shape_rule.padding
        result.size_rule = shape_rule.rule(result.input_shape[0])
    return result


def _layers_of(row: AppliedRow) -> list[keras.layers.Layer]:
    """The layers one row made: the functional graph between its input and output tensors."""
    graph = keras.Model(row.inputs, row.output)
    return [layer for layer in graph.layers if not isinstance(layer, keras.layers.InputLayer)]


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
