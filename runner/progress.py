"""Keras's progress bar: redrawn in place on a terminal, one line when it ends elsewhere (a log file,
CI, a pipe). Keras's own choice redraws in place on every POSIX system (its Progbar takes any
`posix` process for a terminal), which leaves every redraw in a captured log; its `verbose=2` is
the one-line form, as `fit` writes one line per epoch with it."""

import sys

import keras


def verbosity() -> int:
    """Keras's `verbose` for progress: 1, the bar in place, on a terminal; 2, one line at the end, elsewhere."""
    return 1 if sys.stdout.isatty() else 2


def bar(target: int | None, unit_name: str) -> keras.utils.Progbar:
    """A bar over `target` units (None: unknown, see `finish`)."""
    return keras.utils.Progbar(target, verbose=verbosity(), unit_name=unit_name)


def finish(progress: keras.utils.Progbar, done: int) -> None:
    """Ends a bar of unknown length once the work has: its length is now known, so the one-line form
    has a count to write."""
    progress.target = done
    progress.update(done, finalize=True)
