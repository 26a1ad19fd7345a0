"""The one place a YAML `type:` string maps to the function that builds that block.

A block function takes the current tensor and keyword-only arguments; its signature is the schema
of its YAML row (see `arguments.py`). Families register themselves when `builders` is imported.
"""

import dataclasses
from typing import Callable

from builders.errors import SpecError


@dataclasses.dataclass(frozen=True)
class Block:
    type: str
    fn: Callable
    # A side-output block (GoogLeNet's auxiliary classifier) taps the current tensor for an extra
    # model output and leaves the main path as it was.
    side_output: bool = False


_BLOCKS: dict[str, Block] = {}


def register(type_name: str, *, side_output: bool = False) -> Callable:
    def add(fn: Callable) -> Callable:
        if type_name in _BLOCKS:
            raise RuntimeError(f"block type {type_name!r} is registered twice")
        _BLOCKS[type_name] = Block(type_name, fn, side_output)
        return fn

    return add


def registered() -> list[str]:
    return sorted(_BLOCKS)


def lookup(type_name: object, path: str) -> Block:
    if not isinstance(type_name, str) or type_name not in _BLOCKS:
        raise SpecError(
            f"{path}.type: unknown block type {type_name!r}; registered: {', '.join(registered())}"
        )
    return _BLOCKS[type_name]
