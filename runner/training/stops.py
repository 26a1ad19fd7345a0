"""SIGTERM and Ctrl-C as KeyboardInterrupt, so a stop unwinds through `finally` and atexit.

Outside a training run (a sweep between its jobs) `interrupt` raises at once. While a run is
recorded (`DeferredStops`), SIGTERM and the first Ctrl-C only note the request, and the epoch
loop raises at its next step boundary (`stop_if_requested`): an exception raised at an arbitrary
point can land inside a library that turns it into another error (TensorFlow's runtime, a
database driver), and the run would end FAILED instead of KILLED. A step takes seconds at most;
schedulers give a grace period of tens of seconds. A second Ctrl-C stops at once.
"""

import signal
import sys
import threading
from typing import Optional

DEFERRED_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_requested: Optional[str] = None


def interrupt(signum: int, frame) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def request_stop(signum: int, frame) -> None:
    global _requested
    name = signal.Signals(signum).name
    if _requested and signum == signal.SIGINT:  # the user insists
        raise KeyboardInterrupt(f"signal {name}")
    _requested = name
    if signum == signal.SIGINT:
        print("\nstopping after this step (Ctrl-C again stops at once)", file=sys.stderr, flush=True)


def stop_if_requested() -> None:
    if _requested:
        raise KeyboardInterrupt(f"signal {_requested}")


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


class DeferredStops(Trap):
    """While a run trains, SIGTERM and Ctrl-C request a stop instead of raising wherever they land."""

    def __init__(self):
        super().__init__(request_stop, DEFERRED_SIGNALS)

    def start(self) -> None:
        global _requested
        _requested = None  # a request from an earlier run in this process is not this run's
        super().start()

    def __enter__(self) -> "DeferredStops":
        self.start()
        return self

    def __exit__(self, *exc_info) -> bool:
        self.end()
        return False
