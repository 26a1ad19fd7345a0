"""Published weights on this machine: fetched once into ~/.cache/classic-cnns/weights/ with the
ecosystem's own clients (keras.utils.get_file, checked against its md5, or here against BVLC's sha1;
huggingface_hub's cache), each of which writes a file completely or not at all.

Offline, both clients retry for tens of seconds (huggingface_hub: 23 s here); the host is tried
first, for seconds, so a machine without network fails at once with what to do instead.
"""

import hashlib
import logging
import pathlib
import socket
import urllib.parse

import keras
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

from runner.data.cache_home import cache_home
from runner.mistakes.errors import UserError
from runner.mistakes.messages import joined_lines
from runner.weights.published import Published

log = logging.getLogger(__name__)

TIMEOUT_S = 5.0
HUB_FILE = "model.safetensors"


def weights_home() -> pathlib.Path:
    return cache_home() / "weights"


def fetch(entry: Published) -> pathlib.Path:
    """The local file of a published entry, downloaded if it is not in the cache yet."""
    try:
        return _from_hub(entry) if entry.hub else _from_url(entry)
    except (OSError, ValueError, HfHubHTTPError) as error:  # a refused download, a bad checksum
        raise UserError(f"cannot download {entry.address} ({joined_lines(error)}): {by_hand(entry)}") from None


def by_hand(entry: Published) -> str:
    name = pathlib.PurePosixPath(urllib.parse.urlparse(entry.address).path).name
    return f"download it by hand and pass model.weights=/path/to/{name}"


def _from_url(entry: Published) -> pathlib.Path:
    name = pathlib.PurePosixPath(urllib.parse.urlparse(entry.url).path).name
    cached = weights_home() / name
    if not cached.is_file():  # get_file checks a cached file's md5 itself, and fetches it again if wrong
        _reachable(entry)
    path = pathlib.Path(keras.utils.get_file(name, entry.url, file_hash=entry.md5, cache_dir=str(cache_home()),
                                             cache_subdir="weights"))
    if entry.sha1:
        _check_sha1(path, entry.sha1)
    return path


def _check_sha1(path: pathlib.Path, expected: str) -> None:
    """keras.utils.get_file checks md5 and sha256 only; BVLC publishes sha1. A file that differs is
    removed, so the next run downloads it again."""
    digest = hashlib.sha1()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        path.unlink()
        raise ValueError(f"{path.name} has sha1 {digest.hexdigest()}, not the published {expected}; removed")


def _from_hub(entry: Published) -> pathlib.Path:
    folder = weights_home() / "huggingface"
    try:
        return pathlib.Path(hf_hub_download(entry.hub, HUB_FILE, cache_dir=folder, local_files_only=True))
    except LocalEntryNotFoundError:
        _reachable(entry)
        log.info("downloading %s", entry.address)
        return pathlib.Path(hf_hub_download(entry.hub, HUB_FILE, cache_dir=folder))


def _reachable(entry: Published) -> None:
    address = urllib.parse.urlparse(entry.address)
    host = address.hostname
    try:
        socket.create_connection((host, address.port or {"http": 80}.get(address.scheme, 443)),
                                 timeout=TIMEOUT_S).close()
    except OSError as error:
        raise UserError(f"cannot download {entry.address} ({host}: {joined_lines(error)}): {by_hand(entry)}") from None
