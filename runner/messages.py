"""An exception as the one line a user reads: its message's first line, found along its causes."""

from collections.abc import Iterator


def first_line(text: str) -> str:
    """The first non-blank line of a message ("" for an empty one)."""
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def causes(error: BaseException | None) -> Iterator[BaseException]:
    """`error`, then what it was raised from or while handling, each once."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__
