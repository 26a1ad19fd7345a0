"""An exception as the one line a user reads: its message's first line (with its type, or all its lines
joined), found along its causes."""

from collections.abc import Iterator


def first_line(text: str) -> str:
    """The first non-blank line of a message ("" for an empty one)."""
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def named_first_line(error: BaseException) -> str:
    """`error`'s type and the first line of its message ("OSError: disk I/O error"), the type alone for
    an empty message."""
    message = first_line(str(error))
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def joined_lines(error: object) -> str:
    """`error`'s whole message on one line, each run of white space (line breaks included) one space; its
    type's name when the message is empty. `error` may be a reason given as a string (URLError.reason)."""
    return " ".join(str(error).split()) or type(error).__name__


def causes(error: BaseException | None) -> Iterator[BaseException]:
    """`error`, then what it was raised from or while handling, each once."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__
