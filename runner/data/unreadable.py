"""Which image files cannot be decoded: found once, before training, so no epoch stops on a bad file.

Every file is decoded whole (a truncated JPEG can still yield its top rows, so a crop alone proves
nothing), in parallel with tf.data. The verdict is kept in the user's cache, keyed by every file's
path, size and modification time: the next run on unchanged files reads it instead of decoding again.
"""

import errno
import hashlib
import json
import os
import re
from pathlib import Path

import tensorflow as tf

from runner.data.cache_home import cache_home

# TensorFlow's wrapping of an op's message:
# "{{function_node __wrapped__DecodeImage_device_...}} <message> [Op:DecodeImage]"
TF_WRAPPING = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\]")
TSV_HEADER = "file\treason\n"


def find(paths: list[str]) -> dict[str, str]:
    """{path: why it cannot be decoded} for those of `paths` that TensorFlow cannot decode, symbolic
    links that cannot be followed (a loop, a missing target) first."""
    broken = broken_links(paths)
    return broken | _undecodable([path for path in paths if path not in broken])


def broken_links(paths: list[str]) -> dict[str, str]:
    """{path: why} for those of `paths` that are symbolic links that cannot be followed."""
    return {path: why for path, why in ((path, _broken_link(path)) for path in paths) if why}


def _broken_link(path: str) -> str | None:
    """Why a symbolic link cannot be followed, in the words of a skip reason; None if it can (or is none)."""
    try:
        os.stat(path)
    except OSError as error:
        return "symbolic link loop" if error.errno == errno.ELOOP else f"symbolic link to nothing ({error.strerror})"
    return None


def _undecodable(paths: list[str]) -> dict[str, str]:
    """Of files that exist: those TensorFlow cannot decode, from the cached verdict where there is one."""
    if not paths:
        return {}
    verdict = cache_home() / "file-checks" / f"{_fingerprint(paths)}.json"
    if verdict.is_file():
        return json.loads(verdict.read_text())
    found = _decode_all(paths)
    verdict.parent.mkdir(parents=True, exist_ok=True)
    partial = verdict.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps(found))
    partial.replace(verdict)  # atomic: parallel jobs never read half a verdict
    return found


def _decode_all(paths: list[str]) -> dict[str, str]:
    names = tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string))
    shapes = names.map(lambda path: (path, tf.shape(_decode(tf.io.read_file(path)))),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    decodable = {path.decode() for path, _ in shapes.ignore_errors().as_numpy_iterator()}
    return {path: _reason(path) for path in paths if path not in decodable}


def _decode(data: tf.Tensor) -> tf.Tensor:
    return tf.io.decode_image(data, channels=3, expand_animations=False)


def _reason(path: str) -> str:
    """The decoder's own words for one file (only called for the few that fail)."""
    data = Path(path).read_bytes()
    if not data:
        return "empty file"
    try:
        _decode(tf.constant(data))
    except tf.errors.InvalidArgumentError as error:
        return escaped(TF_WRAPPING.sub("", error.message).strip())
    return "could not be decoded"


def escaped(text: str) -> str:
    """`text` on one line: backslashes, tabs, newlines and other control characters as Python escapes
    (a file name may hold any of them), other characters as they are."""
    return "".join(char if char.isprintable() and char != "\\" else repr(char)[1:-1] for char in text)


def as_tsv(skipped: dict[str, str]) -> str:
    """skipped_files.txt: a header, then one escaped `file<TAB>reason` row per file."""
    return TSV_HEADER + "".join(f"{escaped(path)}\t{escaped(why)}\n" for path, why in sorted(skipped.items()))


def _fingerprint(paths: list[str]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        stat = os.stat(path)
        digest.update(f"{os.path.abspath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
