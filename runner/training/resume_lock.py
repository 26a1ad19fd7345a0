"""One live process per resume point: the process training from a resume folder holds an OS file
lock on the folder's `lock` file, which the kernel drops when the process ends, however it ends
(SIGKILL and power loss included), so nothing is ever left to clean up.

flock locks belong to an open file description: a second open of the file, in another process or
in this one, cannot take it while the first is held. The file holds the holder's PID, for the
message that refuses a second launch.

A separate run of a config that a live process trains (trainer.resume=false) takes a folder of its
own, <key>-2, <key>-3, ..., the first one free: it can never clear or write the live run's. Such a
folder is not where the same command looks for its resume point (always <key>); the next separate
run that finds it free starts afresh in it.
"""

import contextlib
import fcntl
import itertools
import os
import pathlib
from collections.abc import Iterator
from typing import IO

from runner.mistakes.errors import UserError

LOCK_FILE = "lock"


@contextlib.contextmanager
def claimed(root: pathlib.Path, key: str, worker_index: int, separate: bool) -> Iterator[pathlib.Path]:
    """The resume folder of `key` under `root` for this worker (each of a multi-worker run's has its
    own), locked by this process until the block ends. While a live process holds it, a run that
    would resume it is refused; a `separate` one takes the next free folder."""
    first = root / folder_name(key, 1, worker_index)
    for slot in itertools.count(1):
        directory = root / folder_name(key, slot, worker_index)
        handle = acquire(directory)
        if handle:
            break
        if not separate:
            raise UserError(f"{directory} is held by a live process (PID {holder(directory)}) training this "
                            "config; wait for it to end, or add trainer.resume=false to train a separate run")
    if directory != first:
        print(f"{first} is held by a live process (PID {holder(first)}); this separate run keeps its "
              f"resume point in {directory}")
    try:
        yield directory
    finally:
        handle.close()


def folder_name(key: str, slot: int, worker_index: int) -> str:
    return key + (f"-{slot}" if slot > 1 else "") + (f"-worker{worker_index}" if worker_index else "")


def acquire(directory: pathlib.Path) -> IO | None:
    """The held lock of `directory` (close it to release), or None when a live process holds it."""
    path = directory / LOCK_FILE
    while True:
        try:
            handle = _locked(path)
        except FileNotFoundError:  # the holder deleted the folder in between (its run finished)
            continue
        except OSError as error:  # a folder it cannot write, a file system without locks
            raise UserError(f"cannot lock {path}: {error.strerror or error}; run where outputs/resume "
                            "can be written and locked") from None
        if handle is None or _still_at(path, handle):
            return handle
        # We locked a file that a finished run had just deleted with its folder: a new one is there
        # (or will be) for the next process to lock, so lock that one instead.
        handle.close()


def _locked(path: pathlib.Path) -> IO | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115  (held open: the lock lives as long as the file)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    except BaseException:
        handle.close()
        raise
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def holder(directory: pathlib.Path) -> str:
    """The PID the lock file names ("unknown" if the holder has not written it yet)."""
    try:
        return (directory / LOCK_FILE).read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def _still_at(path: pathlib.Path, handle: IO) -> bool:
    try:
        on_disk, held = os.stat(path), os.fstat(handle.fileno())
    except FileNotFoundError:
        return False
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)
