"""The process's environment variables, set for a while and then put back as they were.

What a run sets (MLflow's URI and HTTP settings, a sweep's parent run) must not outlive it: the next
job in the same process, and every subprocess started later, would read it.
"""

import contextlib
import os
from collections.abc import Iterator, Mapping


def snapshot(*names: str) -> dict[str, str | None]:
    """`names` as they are now, None for an unset one: what `put` puts back."""
    return {name: os.environ.get(name) for name in names}


def put(values: Mapping[str, str | None]) -> None:
    """Set each name to its value; None unsets it."""
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextlib.contextmanager
def environment_set(**values: str | None) -> Iterator[None]:
    """`values` in the environment for the block (None: unset), then each name as it was before."""
    before = snapshot(*values)
    put(values)
    try:
        yield
    finally:
        put(before)
