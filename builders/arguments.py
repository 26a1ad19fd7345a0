"""A block function's keyword-only signature is the schema of its YAML row: check a row against it.

Checked before any layer is built, so a typo in row 40 fails at once with the row's path, not
after the first 39 rows have allocated their weights. Counts and sizes carry their bounds in the
annotation (`filters: PositiveInt`), so `filters: -3` fails here too, not deep inside Keras.
"""

import dataclasses
import functools
import inspect
import types
import typing
from typing import Annotated, Any, Callable, Literal, Mapping, Optional

from builders.errors import SpecError

# Supplied by the interpreter, never written in a row as an argument.
INTERPRETER_ARGUMENTS = ("name",)


@dataclasses.dataclass(frozen=True)
class Range:
    """Bounds of a number argument, inclusive, written as Annotated[int, Range(1)] in a signature."""

    minimum: float
    maximum: Optional[float] = None

    def admits(self, value: Any) -> bool:
        return self.minimum <= value and (self.maximum is None or value <= self.maximum)

    def describe(self, base: Any) -> str:
        if base is int and self.minimum == 1 and self.maximum is None:
            return "a positive int"
        kind = "an int" if base is int else "a number"
        if self.maximum is None:
            return f"{kind} >= {self.minimum:g}"
        return f"{kind} from {self.minimum:g} to {self.maximum:g}"


PositiveInt = Annotated[int, Range(1)]  # filters, units, kernel and pool sizes, strides, groups
NonNegativeInt = Annotated[int, Range(0)]  # explicit zero padding, LRN's radius
Fraction = Annotated[float, Range(0, 1)]  # dropout rates


@functools.cache  # a spec of thousands of rows asks for the same few signatures thousands of times
def parameters(fn: Callable) -> dict[str, inspect.Parameter]:
    """The row arguments a block function accepts, in signature order."""
    return {
        name: param
        for name, param in inspect.signature(fn).parameters.items()
        if param.kind is inspect.Parameter.KEYWORD_ONLY and name not in INTERPRETER_ARGUMENTS
    }


def check(fn: Callable, type_name: str, args: Mapping[str, Any], path: str) -> None:
    accepted = parameters(fn)
    hints = _hints(fn)
    valid = ", ".join(accepted) or "none"
    for key in args:
        if key not in accepted:
            raise SpecError(f"{path}.{key}: unknown argument for block {type_name!r}; valid: {valid}")
    for key, param in accepted.items():
        if key not in args and param.default is inspect.Parameter.empty:
            raise SpecError(f"{path}: block {type_name!r} needs {key!r}; arguments: {valid}")
    for key, value in args.items():
        if not matches(value, hints[key]):
            raise SpecError(f"{path}.{key}: expected {describe(hints[key])}, got {value!r}")


@functools.cache
def _hints(fn: Callable) -> dict[str, Any]:
    return typing.get_type_hints(fn, include_extras=True)  # keep the Range bounds


def matches(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, option) for option in typing.get_args(annotation))
    if origin is Literal:
        return isinstance(value, str) and value in typing.get_args(annotation)
    if origin is Annotated:
        base, *bounds = typing.get_args(annotation)
        return matches(value, base) and all(bound.admits(value) for bound in bounds if isinstance(bound, Range))
    if annotation is Any:
        return True
    if annotation is type(None):
        return value is None
    if isinstance(value, bool):  # bool is an int in Python, never in a config
        return annotation is bool
    if annotation is float:
        return isinstance(value, (int, float))
    if annotation is int:
        return isinstance(value, int)
    return isinstance(value, annotation)


def describe(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(option) for option in typing.get_args(annotation))
    if origin is Literal:
        return " or ".join(repr(option) for option in typing.get_args(annotation))
    if origin is Annotated:
        base, *bounds = typing.get_args(annotation)
        ranges = [bound for bound in bounds if isinstance(bound, Range)]
        return ranges[0].describe(base) if ranges else describe(base)
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))
