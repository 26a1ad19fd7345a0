"""The one place a YAML `type:` string maps to the function that builds that block, and its metadata.

A block function takes the current tensor and keyword-only arguments; its signature is the schema
of its YAML row (see `arguments.py`). What the interpreter and the report need to know of a block
beyond its signature is declared where it registers (`Block`'s fields), never in a table keyed by
type names elsewhere. Families register themselves when `builders` is imported.
"""

import dataclasses
from typing import Any, Callable, Mapping

from builders import arguments
from builders.errors import SpecError


@dataclasses.dataclass(frozen=True)
class Block:
    type: str
    fn: Callable
    # A side-output block (GoogLeNet's auxiliary classifier) taps the current tensor for an extra
    # model output and leaves the main path as it was.
    side_output: bool = False
    # A window block (convolution, pooling): the argument holding its kernel size, so its output
    # size follows floor((in + 2*pad - kernel) / stride) + 1 (`geometry.py`); None for other blocks.
    kernel: str | None = None
    # Keras's pooling convention: without `strides` a window steps by its own size; a
    # convolution steps by 1.
    stride_defaults_to_kernel: bool = False
    # Defaults the block takes as the model's last row, the logits (a dense row is then linear).
    last_row_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # What the annotations cannot say: arguments that constrain one another (a pooling row's
    # ceil_mode needs explicit padding). Called as check(args, path) while planning, before any
    # layer is built; raises SpecError naming the key (`model.blocks[1].ceil_mode`).
    check: Callable[[Mapping[str, Any], str], None] | None = None
    # The block's layers counted from shapes alone, size(tally, **row arguments) (`tally.py`): what
    # the memory and depth checks read before any layer is built. Every block has one.
    size: Callable[..., None] | None = None


_BLOCKS: dict[str, Block] = {}


def register(type_name: str, **metadata: Any) -> Callable:
    """`@register("maxpool", kernel="pool_size", stride_defaults_to_kernel=True)`; see `Block`."""

    def add(fn: Callable) -> Callable:
        if type_name in _BLOCKS:
            raise RuntimeError(f"block type {type_name!r} is registered twice")
        block = Block(type_name, fn, **metadata)
        _check_metadata(block)
        _BLOCKS[type_name] = block
        return fn

    return add


def _check_metadata(block: Block) -> None:
    """Metadata names arguments of the block's own signature (a typo fails at import, not in a report)."""
    accepted = arguments.parameters(block.fn)
    named = [block.kernel] if block.kernel else []
    for argument in [*named, *block.last_row_defaults]:
        if argument not in accepted:
            raise RuntimeError(f"block type {block.type!r}: metadata names {argument!r}, not an argument")
    if block.stride_defaults_to_kernel and not block.kernel:
        raise RuntimeError(f"block type {block.type!r}: stride_defaults_to_kernel needs kernel")
    _check_size(block, accepted)


def _check_size(block: Block, accepted: Mapping[str, Any]) -> None:
    """A size function takes the block's arguments with the block's defaults, so the two cannot drift."""
    if block.size is None:
        raise RuntimeError(f"block type {block.type!r}: no size function (Block.size)")
    sized = arguments.parameters(block.size)
    for name, parameter in accepted.items():
        if name not in sized or sized[name].default != parameter.default:
            raise RuntimeError(f"block type {block.type!r}: its size function's argument {name!r} differs "
                               "from the block's")


def registered() -> list[str]:
    return sorted(_BLOCKS)


def lookup(type_name: object, path: str) -> Block:
    if not isinstance(type_name, str) or type_name not in _BLOCKS:
        raise SpecError(
            f"{path}.type: unknown block type {type_name!r}; registered: {', '.join(registered())}"
        )
    return _BLOCKS[type_name]
