"""A row as applied (`Application`), and what building it consumed and produced (`AppliedRow`):
what the interpreter (model.py), the naming rule (names.py) and the report (report.py) share."""

import dataclasses
from typing import Any

import keras

from builders.registry import Block


@dataclasses.dataclass(frozen=True)
class Application:
    """One application of a row: what the report lists as one line."""

    path: str  # model.blocks[i], the row it came from
    name: str
    block: Block
    args: dict[str, Any]


@dataclasses.dataclass
class AppliedRow:
    application: Application
    inputs: Any  # the KerasTensor the row was applied to
    output: Any  # the KerasTensor it produced (for a side output: the extra output)


@dataclasses.dataclass
class BuiltModel:
    model: keras.Model
    rows: list[AppliedRow]
