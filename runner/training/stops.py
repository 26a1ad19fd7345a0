"""SIGTERM and Ctrl-C end a run at a step boundary, as a `Stopped` that carries the signal.

`Stopped` (runner/signals.py) is a KeyboardInterrupt, so a stop unwinds through `finally` and atexit,
and the MLflow run ends KILLED. While a run trains (`DeferredStops`, installed on every worker) SIGTERM and the
first Ctrl-C only note the request, and the loop raises at its next step boundary
(`stop_if_requested`): an exception raised at an arbitrary point can land inside a library that
turns it into another error (TensorFlow's runtime, a database driver), and the run would end FAILED
instead of KILLED. A step takes seconds at most; schedulers give a grace period of tens of seconds.
A second Ctrl-C stops at once. Outside training (a sweep between its jobs) `interrupt` raises at once.
The other commands (`stopped_in_one_line`) stop at once, unwinding as a stop does, in one line,
except inside an MLflow store call (runner/signals.py `held`).
"""

import contextlib
import signal
import sys
import threading
from typing import Optional

from runner.signals import Stopped, interrupt

DEFERRED_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_requested: Optional[signal.Signals] = None


def request_stop(signum: int, frame) -> None:
    global _requested
    if _requested and signum == signal.SIGINT:  # the user insists
        raise Stopped(signum)
    _requested = signal.Signals(signum)
    if signum == signal.SIGINT:
        print("\nstopping after this step (Ctrl-C again stops at once)", file=sys.stderr, flush=True)


def stop_if_requested() -> None:
    if _requested:
        raise Stopped(_requested)


class Trap:
    """Between `start` and `end`, `handler` answers `signums`; `end` puts the previous handlers back."""

    def __init__(self, handler, signums):
        self._handler, self._signums = handler, signums
        self._previous: dict[int, object] = {}

    def start(self) -> None:
        if threading.current_thread() is threading.main_thread():  # Python only allows handlers there
            self._previous = {signum: signal.signal(signum, self._handler) for signum in self._signums}

    def end(self) -> None:
        for signum, previous in self._previous.items():
            # None: the previous handler was not set from Python; the default is the closest we can restore.
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous = {}

    def __enter__(self) -> "Trap":
        self.start()
        return self

    def __exit__(self, *exc_info) -> bool:
        self.end()
        return False


@contextlib.contextmanager
def stopped_in_one_line(consequence: str):
    """A command that does not train, stopped by SIGTERM or Ctrl-C: at once, as a `Stopped` that
    unwinds its `finally` blocks (partial files go, an MLflow run ends KILLED) instead of SIGTERM's
    silent end or Ctrl-C's traceback; then one line saying the `consequence`, and the shell's status."""
    try:
        with Trap(interrupt, DEFERRED_SIGNALS):
            yield
    except KeyboardInterrupt as stop:
        stop = stop if isinstance(stop, Stopped) else Stopped(signal.SIGINT)
        print(f"stopped by {stop.signal.name}; {consequence}", file=sys.stderr)
        sys.exit(stop.exit_code)


class DeferredStops(Trap):
    """While a run trains, SIGTERM and Ctrl-C request a stop instead of raising wherever they land.

    Re-entrant: the loop holds it (every caller of `fit`, on every worker) and so does `train()`,
    around its record and final evaluation too; only the outermost installs and removes the handlers,
    and a request lives from its start to its end, not into the next run of this process."""

    _depth = 0

    def __init__(self):
        super().__init__(request_stop, DEFERRED_SIGNALS)

    def start(self) -> None:
        if DeferredStops._depth == 0:
            _forget_request()
            super().start()
        DeferredStops._depth += 1

    def end(self) -> None:
        DeferredStops._depth -= 1
        if DeferredStops._depth == 0:
            super().end()
            _forget_request()


def _forget_request() -> None:
    global _requested
    _requested = None
