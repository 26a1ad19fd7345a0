"""Files written whole or not at all, a full disk said in one line, and a sqlite store's file.

A file (or a folder: a SavedModel) is written under a temporary name in its own folder and renamed over
its final name only once complete (a rename within a folder is atomic), so a crash or a full disk never
leaves a truncated file under a final name. Running out of space shows up in many words: Python's and HDF5's errno 28,
TensorFlow's ResourceExhaustedError, sqlite's SQLITE_FULL; `full_disk_line` reads them all.
"""

import contextlib
import errno
import os
import pathlib
import re
import shutil
from collections.abc import Iterator

from runner.mistakes.messages import causes, first_line, named_first_line

NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device": also in TensorFlow's and HDF5's messages
FULL_STORE = "database or disk is full"  # sqlite's words for SQLITE_FULL
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# Where the path sits in the messages that carry it only in words.
PATH_PATTERNS = (re.compile(r"filename = '([^']+)'"),  # HDF5
                 re.compile(rf"(\S+?)(?:_temp/\S*)?; {NO_SPACE}"))  # TensorFlow's file ops (a checkpoint's temp files)
RERUN = "free some space, then rerun the same command"  # what a command that does not train can say
RESUMES = f"{RERUN}: it resumes from the last completed epoch"  # what training says
SQLITE = "sqlite:///"  # a sqlite store's URI: this, then the database file's path


def partial_name(path: pathlib.Path, writer: str = "") -> pathlib.Path:
    """Hidden, beside `path`, keeping its suffixes, which Keras checks (.weights.h5, .keras); `writer`
    keeps apart the partial files of processes writing `path` at the same time."""
    stem, dot, suffixes = path.name.partition(".")
    return path.with_name(f".{stem}.partial{writer}{dot}{suffixes}")


@contextlib.contextmanager
def written_whole(path: pathlib.Path, *, shared: bool = False) -> Iterator[pathlib.Path]:
    """The name to write `path` under: renamed to `path` when the block succeeds (if it wrote it: a
    checkpoint that did not improve does not), removed when it fails. `shared`: processes may write `path`
    at the same time (a cache in the user's home, read by parallel sweep jobs or workers), so the name is
    this process's own: no writer truncates, removes or renames another's half-written file."""
    partial = partial_name(path, f".{os.getpid()}" if shared else "")
    removed(partial)  # a killed write's leftover: after the block, a partial means "written now"
    try:
        yield partial
    except BaseException as error:
        removed(partial)
        if isinstance(error, OSError) and error.filename is None:  # a write() says no path
            error.filename = str(path)
        raise
    if partial.exists():
        if partial.is_dir():
            removed(path)  # a rename puts a folder only where there is none, or an empty one
        os.replace(partial, path)


def removed(path: pathlib.Path) -> None:
    """`path` gone, a file or a whole folder; nothing to do when there is none."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def sqlite_uri(database: pathlib.Path) -> str:
    """The URI of the sqlite database file `database`, by its absolute path."""
    return f"{SQLITE}{database.resolve()}"


def sqlite_file(uri: str) -> pathlib.Path | None:
    """The database file of a sqlite URI; None for any other store."""
    return pathlib.Path(uri.removeprefix(SQLITE)) if uri.startswith(SQLITE) else None


def unwritable(folder: pathlib.Path) -> pathlib.Path | None:
    """The nearest existing folder at or above `folder` (the one a write would create the rest in) when
    this process cannot create files there: a read-only file system, another user's folder; else None."""
    existing = next(path for path in (folder, *folder.parents) if path.exists())
    return None if os.access(existing, os.W_OK | os.X_OK) else existing


def is_full(error: BaseException) -> bool:
    """Whether `error`, or an error it was raised from or during, is a full disk."""
    return any(_says_full(cause) for cause in causes(error))


def full_disk_line(error: BaseException, advice: str) -> str | None:
    """What a full disk met anywhere in `error`'s chain says in one line, ending in the command's
    `advice` (RESUMES or RERUN); None if it is not one."""
    if not is_full(error):
        return None
    path = written_path(error)
    if path is not None:
        return f"no space left on device writing {path} ({free_space(path)} free there); {advice}"
    # sqlite names no file; a run's end names its store (store_full_line)
    if store_is_full(error):
        return f"the MLflow store is full (sqlite: {FULL_STORE}); {advice}"
    return f"no space left on device ({first_line(str(error))}); {advice}"


def store_is_full(error: BaseException) -> bool:
    """Whether sqlite, the MLflow store, met the full disk in `error`'s chain."""
    return any(FULL_STORE in str(cause) for cause in causes(error))


def store_full_line(uri: str, run_id: str | None, cause: BaseException | None, ended: bool, resumable: bool) -> str:
    """The MLflow store met a full disk. Ended, the run is FAILED; not, it stays RUNNING (nothing can
    record its end): a training run (`resumable`) until the same command, rerun with room, resumes it."""
    database = sqlite_file(uri)
    line = f"the MLflow store {uri} is full" + (f" ({free_space(database)} free there)" if database else "")
    first = written_path(cause) if cause is not None else None
    if first:  # the run's own files filled the disk first
        line = f"no space left on device writing {first} ({free_space(first)} free there), and {line}"
    elif cause is not None and not is_full(cause):
        line = f"{named_first_line(cause)}; then {line}"
    if run_id is None:
        return f"{line}: no MLflow run could start; {RERUN}"
    if ended:
        return f"{line}: MLflow run {run_id} ended FAILED; {RESUMES if resumable else RERUN}"
    if not resumable:
        return f"{line}: MLflow run {run_id} stays RUNNING; {RERUN}"
    return f"{line}: MLflow run {run_id} stays RUNNING; {RERUN}: it resumes that run from its last completed epoch"


def written_path(error: BaseException) -> str | None:
    """The file a full disk stopped, as the first error in the chain that names one says."""
    for cause in causes(error):
        if not _says_full(cause):
            continue
        if isinstance(cause, OSError) and cause.filename:
            return os.fsdecode(cause.filename)
        for pattern in PATH_PATTERNS:
            found = pattern.search(str(cause))
            if found:
                return found.group(1)
    return None


def free_space(path: str | os.PathLike) -> str:
    """Free bytes on the file system of `path` (its nearest existing folder), as a size."""
    folder = pathlib.Path(path).absolute()
    while not folder.exists():
        folder = folder.parent
    return _size(shutil.disk_usage(folder).free)


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB"):
        if count < 1024:
            return f"{count:.0f} B" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


def _says_full(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno in FULL_ERRNOS:
        return True
    message = str(error)
    return NO_SPACE in message or FULL_STORE in message
