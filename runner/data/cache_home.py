"""The project's folder in the user's cache (XDG_CACHE_HOME, else ~/.cache): downloads and file checks."""

import os
from pathlib import Path


def cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "classic-cnns"
