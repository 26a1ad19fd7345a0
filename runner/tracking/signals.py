"""SIGTERM as KeyboardInterrupt, so a scheduler's stop unwinds through `finally` and atexit like Ctrl-C."""

import signal


def interrupt(signum: int, frame) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")
