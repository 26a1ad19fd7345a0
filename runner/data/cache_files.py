"""Where data.cache keeps its decoded images: in memory, or with data.cache_dir in files.

Files are this process's own (a new folder per dataset load, removed when the process exits):
tf.data locks a cache file while writing it, so two runs must never share one, and a file left by
another config would be read back as if it were this one's.
"""

import atexit
import pathlib
import shutil
import tempfile
from typing import Optional

from runner.mistakes.errors import UserError


def cache_folder(cache_dir: Optional[str]) -> Optional[pathlib.Path]:
    """A fresh folder under data.cache_dir for one load's cache files; None keeps them in memory."""
    if not cache_dir:
        return None
    parent = pathlib.Path(cache_dir).expanduser()
    try:
        parent.mkdir(parents=True, exist_ok=True)
        folder = pathlib.Path(tempfile.mkdtemp(prefix="tfdata-cache-", dir=parent))
    except OSError as error:
        raise UserError(f"data.cache_dir={cache_dir}: cannot create a folder there ({error.strerror}); "
                        "give a writable folder, or null to cache in memory") from None
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def cache_file(folder: Optional[pathlib.Path], split: str) -> str:
    """tf.data's cache filename for a split: '' is its in-memory cache."""
    return str(folder / split) if folder else ""
