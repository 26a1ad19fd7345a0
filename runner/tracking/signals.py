"""SIGTERM as KeyboardInterrupt, so a scheduler's stop unwinds through `finally` and atexit like Ctrl-C.

Outside training (a sweep between its jobs) `interrupt` raises at once. During a training run,
`request_stop` only notes the signal and the epoch loop raises at its next step boundary
(`stop_if_requested`): an exception raised at an arbitrary point can land inside a library that
turns it into another error (TensorFlow's runtime, a database driver), and the run would end FAILED
instead of KILLED. A step takes seconds at most; schedulers give a grace period of tens of seconds.
"""

import signal
from typing import Optional

_requested: Optional[str] = None


def interrupt(signum: int, frame) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def request_stop(signum: int, frame) -> None:
    global _requested
    _requested = signal.Signals(signum).name


def clear_stop_request() -> None:
    global _requested
    _requested = None


def stop_if_requested() -> None:
    if _requested:
        raise KeyboardInterrupt(f"signal {_requested}")
