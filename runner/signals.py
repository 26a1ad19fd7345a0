"""A stop by SIGTERM or Ctrl-C, as an exception, and the sections it must not land inside.

`Stopped` is a KeyboardInterrupt, so a stop unwinds through `finally` and atexit. `interrupt`, the
handler of the commands that stop at once, raises it wherever the signal lands, except inside
`held()`: there it is raised when the section ends. An MLflow store call is such a section (the
tracking layer holds each): raised inside sqlite's driver, a stop leaves the store's lock taken, so
the run could not then be ended KILLED and would stay RUNNING, after 20 s of waiting on the lock.
"""

import contextlib
import signal
from collections.abc import Iterator
from typing import Optional

_holding = 0  # nested held() sections open now
_held: Optional[signal.Signals] = None  # the stop that arrived inside one


class Stopped(KeyboardInterrupt):
    """A stop by `signal`; `exit_code` is what a shell reports for a process the signal ended."""

    def __init__(self, signum: int):
        self.signal = signal.Signals(signum)
        super().__init__(f"signal {self.signal.name}")

    def __reduce__(self):  # a launcher's worker process may hand it back to the sweep's
        return Stopped, (self.signal.value,)

    @property
    def exit_code(self) -> int:
        return 128 + self.signal.value  # SIGTERM 143, SIGINT 130


def interrupt(signum: int, frame) -> None:
    global _held
    if _holding:
        _held = signal.Signals(signum)
        return
    raise Stopped(signum)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """A stop that `interrupt` meets inside the block is raised as the outermost such block ends."""
    global _holding, _held
    _holding += 1
    try:
        yield
    finally:
        _holding -= 1
    if _holding == 0 and _held is not None:
        stop, _held = _held, None
        raise Stopped(stop)
