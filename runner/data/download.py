"""Download a dataset archive, verify it and extract it so that a half-done job is never a dataset."""

import dataclasses
import hashlib
import http.client
import logging
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from runner.mistakes.errors import UserError
from runner.mistakes.messages import joined_lines

log = logging.getLogger(__name__)

TIMEOUT_S = 5.0  # per connection attempt and per read: no network fails in seconds, not minutes
HEAD_BYTES = 2**20  # fastai's check hashes the first MiB only (fastai/data/external.py, _check_file)
CHUNK_BYTES = 2**20


@dataclasses.dataclass(frozen=True)
class Archive:
    url: str
    size: int  # bytes
    head_md5: str  # md5 of the first HEAD_BYTES, as fastai records it
    md5: str  # md5 of the whole file
    folder: str  # the one top folder inside, holding train/ and val/


def fetch(archive: Archive, root: Path) -> None:
    """Download `archive`, check it and extract it as `root` (absent or empty).

    Everything happens in a hidden sibling folder, renamed to `root` only once complete, and
    removed whatever happens: a failed or interrupted run leaves no `root` to be taken for data.
    """
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    try:
        path = staging / Path(archive.url).name
        _download(archive, path)
        _verify(archive, path)
        extract(archive, path, staging)
        if root.exists():
            root.rmdir()  # empty: `load` fetches only into an absent or empty folder
        (staging / archive.folder).rename(root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def extract(archive: Archive, path: Path, into: Path) -> None:
    """Extract the .tgz at `path` into `into`, which must then hold archive.folder/train and /val."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            # No absolute paths, links out or devices; Pythons before 3.10.12 / 3.11.4 lack the
            # filter, and the archive's checksum has been verified by then.
            tar.extractall(into, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    except (tarfile.TarError, OSError, EOFError) as error:
        raise UserError(f"cannot extract {archive.url} ({joined_lines(error)}): {_by_hand(archive)}") from None
    tree = into / archive.folder
    if not ((tree / "train").is_dir() and (tree / "val").is_dir()):
        raise UserError(f"{archive.url} holds no {archive.folder}/train and {archive.folder}/val: "
                        f"{_by_hand(archive)}")


def _download(archive: Archive, path: Path) -> None:
    log.info("downloading %s (%.0f MB) to %s", archive.url, archive.size / 1e6, path.parent)
    try:
        with urllib.request.urlopen(archive.url, timeout=TIMEOUT_S) as response, open(path, "wb") as file:
            shutil.copyfileobj(response, file, CHUNK_BYTES)
    except (OSError, http.client.HTTPException) as error:  # URLError and timeouts are OSErrors
        reason = getattr(error, "reason", error)
        raise UserError(f"cannot download {archive.url} ({joined_lines(reason)}): {_by_hand(archive)}") from None


def _verify(archive: Archive, path: Path) -> None:
    head, whole = hashlib.md5(), hashlib.md5()
    with open(path, "rb") as file:
        head.update(file.read(HEAD_BYTES))
        file.seek(0)
        while chunk := file.read(CHUNK_BYTES):
            whole.update(chunk)
    found = (path.stat().st_size, head.hexdigest(), whole.hexdigest())
    if found != (archive.size, archive.head_md5, archive.md5):
        raise UserError(f"{archive.url} does not match its checksum (got {found[0]} bytes, md5 {found[2]}; "
                        f"expected {archive.size} bytes, md5 {archive.md5}): {_by_hand(archive)}")


def _by_hand(archive: Archive) -> str:
    return (f"download it by hand, extract it and pass data.root=/path/to/{archive.folder} "
            "(the folder holding train/ and val/)")
