"""The interpreter: a model spec (name, input_shape, blocks) becomes a Keras functional model.

Rows are applied in order; `repeat: n` applies a row n times, as `<name>_block1` ... `<name>_block<n>`,
and only the first application keeps `strides` (the rule torchvision, timm and Keras share for
ResNet stages); side-output rows add a model output and leave the main path alone. Every row is
checked against its block's signature before any layer is built, the plan against the depth Keras
can build (`sizes.py`), and the built model against the naming rule that maps its layers back onto
rows (`names.py`).
"""

import re
from typing import Any, Mapping

import keras

from builders import arguments, geometry, names, sizes
from builders.errors import SpecError
from builders.registry import Block, lookup, registered
from builders.rows import Application, AppliedRow, BuiltModel

ROOT = "model"
ROW_KEYS = ("type", "name", "repeat")
SPEC_KEYS = ("name", "input_shape", "blocks", "aux_loss_weight", "without")
# Keras styles some messages for terminals (\x1b[1m bold ... \x1b[0m); a log or a file shows them as junk.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def build_model(spec: Mapping[str, Any]) -> keras.Model:
    return build(spec).model


def build(spec: Mapping[str, Any]) -> BuiltModel:
    """The model and, row by row, the tensors each application consumed and produced."""
    input_shape = _check_spec(spec)
    applications = plan(spec)
    sizes.check_depth(len(spec["blocks"]), sizes.estimate(input_shape, applications))
    inputs = keras.Input(shape=input_shape, name="input")
    x, side_outputs, rows = inputs, [], []
    for application in applications:
        output = _apply(application, x)
        rows.append(AppliedRow(application, x, output))
        if application.block.side_output:
            side_outputs.append(output)
        else:
            x = output
    _check_logits(x, applications[-1])
    outputs = [x, *side_outputs] if side_outputs else x
    model = keras.Model(inputs, outputs, name=spec["name"])
    names.check(model, rows)
    return BuiltModel(model, rows)


def estimate(spec: Mapping[str, Any]) -> sizes.Estimate:
    """Every row's size as applied, from the shapes alone (`sizes.py`); builds nothing."""
    return sizes.estimate(_check_spec(spec), plan(spec))


def plan(spec: Mapping[str, Any]) -> list[Application]:
    """Every row as applied, with its arguments checked; builds nothing."""
    blocks = spec["blocks"]
    aux_loss_weight = spec.get("aux_loss_weight")
    left_out = _left_out(spec.get("without") or [])
    applications, type_counts = [], {}
    for index, row in enumerate(blocks):
        path = f"{ROOT}.blocks[{index}]"
        if not isinstance(row, Mapping):
            raise SpecError(f"{path}: expected a mapping like {{type: conv, filters: 64}}, got {row!r}")
        block = lookup(row.get("type"), path)
        if block.type in left_out:
            continue  # an ablation: the model as if its file had no such rows
        type_counts[block.type] = type_counts.get(block.type, 0) + 1
        if block.side_output and aux_loss_weight is None:
            raise SpecError(f"{ROOT}.aux_loss_weight: {path} is a side output ({block.type}); "
                            "give its loss a weight, or 0 to remove side outputs")
        if block.side_output and aux_loss_weight == 0:
            continue  # aux_loss_weight: 0 removes auxiliary heads from the built model
        args = {key: value for key, value in row.items() if key not in ROW_KEYS}
        if index == len(blocks) - 1:
            args = {**block.last_row_defaults, **args}  # the last row is the logits
        arguments.check(block.fn, block.type, args, path)
        if block.check:
            block.check(args, path)
        base_name = row.get("name") or f"{block.type}{type_counts[block.type]}"
        applications += _repeat(path, base_name, block, args, row.get("repeat", 1))
    _check_unique_names(applications)
    return applications


def _left_out(types: Any) -> set[str]:
    """`without: [lrn]`: block types to leave out, each a registered one."""
    if not isinstance(types, (list, tuple)):
        raise SpecError(f"{ROOT}.without: expected a list of block types like [lrn], got {types!r}")
    for index, block_type in enumerate(types):
        if block_type not in registered():
            raise SpecError(f"{ROOT}.without[{index}]: unknown block type {block_type!r}; "
                            f"registered: {', '.join(registered())}")
    return set(types)


def _repeat(path: str, name: str, block: Block, args: dict, repeat: Any) -> list[Application]:
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise SpecError(f"{path}.repeat: expected a positive int, got {repeat!r}")
    if repeat == 1:
        return [Application(path, name, block, args)]
    applications = []
    for number in range(1, repeat + 1):
        repeated_args = dict(args)
        if number > 1 and "strides" in arguments.parameters(block.fn):
            repeated_args["strides"] = 1
        applications.append(Application(path, names.repeated(name, number), block, repeated_args))
    return applications


def _check_spec(spec: Mapping[str, Any]) -> tuple[int, ...]:
    unknown = [key for key in spec if key not in SPEC_KEYS]
    if unknown:
        raise SpecError(f"{ROOT}.{unknown[0]}: unknown key; valid: {', '.join(SPEC_KEYS)}")
    for key in ("name", "input_shape", "blocks"):
        if key not in spec:
            raise SpecError(f"{ROOT}.{key}: missing; a model needs {', '.join(SPEC_KEYS[:3])}")
    shape = spec["input_shape"]
    if not (
        isinstance(shape, (list, tuple)) and len(shape) == 3
        and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
    ):
        raise SpecError(f"{ROOT}.input_shape: expected [height, width, channels] of positive ints, got {shape!r}")
    if not isinstance(spec["blocks"], (list, tuple)) or not spec["blocks"]:
        raise SpecError(f"{ROOT}.blocks: expected a non-empty list of rows")
    weight = spec.get("aux_loss_weight", 0)
    if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0):
        raise SpecError(f"{ROOT}.aux_loss_weight: expected a number >= 0, got {weight!r}")
    return tuple(shape)


def _check_unique_names(applications: list[Application]) -> None:
    seen = {}
    for application in applications:
        if application.name in seen:
            raise SpecError(
                f"{application.path}.name: {application.name!r} is already used by {seen[application.name]}"
            )
        seen[application.name] = application.path


def _apply(application: Application, x):
    where = f"{application.path} ({application.name}: {application.block.type})"
    _check_no_collapse(application, x, where)
    try:
        return application.block.fn(x, name=application.name, **application.args)
    except ValueError as error:  # Keras rejects the shape or a value; say which row and input
        raise SpecError(f"{where}: cannot be applied to a {_shape(x)} input: {_reason(error)}") from None


def _check_no_collapse(application: Application, x, where: str) -> None:
    rule = geometry.of_row(application.block, application.args)
    if rule is None or len(x.shape) != 4:
        return
    for size in x.shape[1:3]:
        if rule.output_size(size) <= 0:
            raise SpecError(
                f"{where}: the feature map collapses: {rule.rule(size)} from a {_shape(x)} input; "
                f"use a larger model.input_shape or remove the row"
            )


def _reason(error: ValueError) -> str:
    """The first informative line of Keras's message, as plain text."""
    lines = [line.strip() for line in ANSI_ESCAPE.sub("", str(error)).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith("Exception encountered")]
    return (useful or lines or ["invalid"])[0]


def _check_logits(x, last: Application) -> None:
    if len(x.shape) != 2:
        raise SpecError(
            f"{last.path}: the model's output is {_shape(x)}, not a vector of logits; "
            f"put a flatten or global_avgpool row before the classifier"
        )


def _shape(tensor) -> str:
    return "x".join(str(size) for size in tensor.shape[1:])
