"""Which image files cannot be read: found once, before training, so no epoch stops on a bad file.

Links that cannot be followed and images whose header claims more than data.max_pixels are skipped
first (runner/data/image_sizes.py). Every other file is decoded whole (a truncated JPEG can still
yield its top rows, so a crop alone proves nothing), in parallel with tf.data, as many at once as
half the available memory holds at the largest image's size. The verdict is kept in the user's
cache, keyed by the limit and every file's path, size and modification time: the next run on
unchanged files reads it instead of decoding again.
"""

import errno
import hashlib
import json
import os
import re
from pathlib import Path

import psutil
import tensorflow as tf

from runner import progress
from runner.data import image_sizes
from runner.data.cache_home import cache_home
from runner.data.source import as_written
from runner.disk import written_whole

# TensorFlow's wrapping of an op's message:
# "{{function_node __wrapped__DecodeImage_device_...}} <message> [Op:DecodeImage]"
TF_WRAPPING = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\]")
TSV_HEADER = "file\treason\n"
# Files from which the decoding pass shows Keras's progress bar: about a second's checking here (1,700
# files a second on two cores); ImageNet's 1.3 million take minutes, and a silent wait looks hung.
PROGRESS_FROM = 2_000


def find(paths: list[str], max_pixels: int, decode: bool = True) -> dict[str, str]:
    """{path: why it cannot be read} for those of `paths` that are symbolic links that cannot be followed
    (a loop, a missing target), images over `max_pixels`, and with `decode`, files TensorFlow cannot decode."""
    broken = _broken_links(paths)
    followed = [path for path in paths if path not in broken]
    if decode:
        return broken | _unreadable(followed, max_pixels)
    return broken | image_sizes.oversized(_sizes(followed), max_pixels)


def _broken_links(paths: list[str]) -> dict[str, str]:
    """{path: why} for those of `paths` that are symbolic links that cannot be followed."""
    return {path: why for path, why in ((path, _broken_link(path)) for path in paths) if why}


def _broken_link(path: str) -> str | None:
    """Why a symbolic link cannot be followed, in the words of a skip reason; None if it can (or is none)."""
    try:
        os.stat(path)
    except OSError as error:
        return "symbolic link loop" if error.errno == errno.ELOOP else f"symbolic link to nothing ({error.strerror})"
    return None


def _unreadable(paths: list[str], max_pixels: int) -> dict[str, str]:
    """Of files that exist: those too large or that TensorFlow cannot decode, from the cached verdict where
    there is one."""
    if not paths:
        return {}
    verdict = cache_home() / "file-checks" / f"{_fingerprint(paths, max_pixels)}.json"
    if verdict.is_file():
        return json.loads(verdict.read_text())
    sizes = _sizes(paths)
    found = image_sizes.oversized(sizes, max_pixels)
    found |= _decode_all([path for path in paths if path not in found],
                         largest=max((count or max_pixels for count in sizes.values()), default=1))
    verdict.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(verdict, shared=True) as partial:  # parallel jobs never read half a verdict
        partial.write_text(json.dumps(found))
    return found


def _sizes(paths: list[str]) -> dict[str, int | None]:
    return {path: image_sizes.pixels(path) for path in paths}


def _decode_all(paths: list[str], largest: int) -> dict[str, str]:
    names = tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string))
    shapes = names.map(as_written(lambda path: (path, tf.shape(_decode(tf.io.read_file(path))))),
                       num_parallel_calls=_parallel_decodes(largest), deterministic=False)
    decodable, bar = set(), None
    if len(paths) >= PROGRESS_FROM:
        print(f"checking that {len(paths)} image files decode (once: the verdict is kept for the next run)")
        bar = progress.bar(len(paths), unit_name="file")
    for path, _ in shapes.ignore_errors().as_numpy_iterator():
        decodable.add(path.decode())
        if bar and len(decodable) % 100 == 0:
            bar.update(len(decodable))
    if bar:
        bar.update(len(paths), finalize=True)  # the undecodable ones, which ignore_errors drops, included
    return {path: _reason(path) for path in paths if path not in decodable}


def _parallel_decodes(largest: int) -> int:
    """One decode per core, but no more at once than half the available memory holds at the largest
    image's size: a folder of large images would otherwise take a core's share of memory each."""
    budget = psutil.virtual_memory().available // 2
    return max(1, min(os.cpu_count() or 1, budget // (largest * image_sizes.DECODE_BYTES_PER_PIXEL)))


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


def _fingerprint(paths: list[str], max_pixels: int) -> str:
    digest = hashlib.sha256(f"max_pixels={max_pixels}\n".encode())
    for path in sorted(paths):
        stat = os.stat(path)
        digest.update(f"{os.path.abspath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
