"""Each image's size read from its header before any decoder sees the file.

A small file can claim an enormous image: a 438 KB PNG of 20000x20000 pixels decodes to 1.2 GB, and
TensorFlow's decoders allocate the whole image first (predict took 7.7 GB on one). Files whose header
claims more than `data.max_pixels` are skipped with that reason, so no file costs more than that.
Pillow reads the header alone (`Image.open` is lazy) for every format TensorFlow decodes (JPEG, PNG,
GIF, BMP, WebP); a file it cannot read is left for TensorFlow's decoder to judge.
"""

import contextlib
from collections.abc import Iterator

from PIL import Image, UnidentifiedImageError

# A decoder's working memory per pixel, for bounding how many decode at once: 3 bytes of RGB out, plus
# a 16-bit PNG's rows or a conversion's copy on the way there.
DECODE_BYTES_PER_PIXEL = 8


def pixels(path: str) -> int | None:
    """Width x height as the file's header says; None where Pillow cannot read a header."""
    try:
        with _pillows_own_bound_off(), Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):  # Pillow's words for a bad header
        return None
    return width * height


def oversized(sizes: dict[str, int | None], max_pixels: int) -> dict[str, str]:
    """{path: why} for the images whose header claims more than `max_pixels` pixels."""
    return {path: f"{count:,} pixels, more than data.max_pixels={max_pixels:,}"
            for path, count in sizes.items() if count is not None and count > max_pixels}


@contextlib.contextmanager
def _pillows_own_bound_off() -> Iterator[None]:
    """Pillow refuses to open an image over about 179 megapixels (its decompression-bomb guard) even to
    read its size; data.max_pixels is the bound here, and may be set above Pillow's."""
    bound, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = bound
