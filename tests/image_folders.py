"""Real image files in ImageNet's folder layout, made in a test: root/train/<class>/, root/val/<class>/.

    from image_folders import make_image_folder
    root = make_image_folder(tmp_path / "imagenette", per_class=4)
    cfg = compose("data=imagenette", f"data.root={root}")

Each class has its own colour (CLASS_COLOURS), so a model can learn the classes from them.
"""

import pathlib

import numpy as np
import tensorflow as tf

IMAGENETTE_WNIDS = ("n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
                    "n03394916", "n03417042", "n03425413", "n03445777", "n03888257")

# Far apart in RGB (gray images of two classes may look alike: their luma is not always far apart).
CLASS_COLOURS = np.array([
    [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [0, 0, 128],
], np.uint8)

NOISE = 8  # +- grey levels of uniform noise: images differ, classes stay apart
ENCODERS = {"jpeg": (tf.io.encode_jpeg, ".JPEG"), "png": (tf.io.encode_png, ".png")}


def make_image_folder(root, classes=IMAGENETTE_WNIDS, per_class=2, size=(48, 64),
                      formats=("jpeg", "png"), grayscale_every=3, seed=0) -> pathlib.Path:
    """Writes per_class images per class into root/train/<class>/ and root/val/<class>/; returns root.

    Image i of a class is formats[i % len(formats)] (JPEG as <class>_<i>.JPEG, PNG as .png), one
    channel when i % grayscale_every == grayscale_every - 1 (0: never), and size (height, width)
    when i is even, transposed when odd (landscape and portrait). Pixels: the class's colour from
    CLASS_COLOURS (cycled) plus noise, fixed by seed.
    """
    root = pathlib.Path(root)
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                shape = size if i % 2 == 0 else size[::-1]
                gray = grayscale_every > 0 and i % grayscale_every == grayscale_every - 1
                pixels = _pixels(CLASS_COLOURS[label % len(CLASS_COLOURS)], shape, gray, rng)
                encode, suffix = ENCODERS[formats[i % len(formats)]]
                (folder / f"{name}_{i}{suffix}").write_bytes(encode(pixels).numpy())
    return root


def _pixels(colour, shape, gray, rng) -> np.ndarray:
    noise = rng.integers(-NOISE, NOISE + 1, (*shape, 3))
    image = np.clip(colour.astype(int) + noise, 0, 255).astype(np.uint8)
    return tf.image.rgb_to_grayscale(image).numpy() if gray else image


def dirty_files(colour=CLASS_COLOURS[0], shape=(40, 56)) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """({name: bytes} readable in some unusual form, {name: bytes} no decoder can read), as real
    folders hold them: a PNG named .JPEG, gray and CMYK JPEGs, an RGBA PNG, a GIF; truncated and
    empty files and text named as images. Readable ones have the class's colour."""
    from PIL import Image  # matplotlib's dependency; only the CMYK JPEG needs it

    image = _pixels(colour, shape, gray=False, rng=np.random.default_rng(1))
    jpeg = tf.io.encode_jpeg(image, quality=95).numpy()
    png = tf.io.encode_png(image).numpy()
    readable = {
        "png_named_jpeg.JPEG": png,
        "gray.JPEG": tf.io.encode_jpeg(_pixels(colour, shape, gray=True, rng=np.random.default_rng(2))).numpy(),
        "cmyk.JPEG": _pil_bytes(Image.fromarray(image).convert("CMYK"), "JPEG"),
        "rgba.png": _pil_bytes(Image.fromarray(image).convert("RGBA"), "PNG"),
        "palette.gif": _pil_bytes(Image.fromarray(image), "GIF"),
    }
    unreadable = {
        "truncated.JPEG": jpeg[: len(jpeg) // 2],
        "truncated.png": png[: len(png) // 2],
        "empty.JPEG": b"",
        "notes.JPEG": b"not an image, just named like one\n",
    }
    return readable, unreadable


def _pil_bytes(image, format_name: str) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format_name)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` gray pixels, with one row of data: what a decoder
    would allocate in full before finding the rest missing. Its chunks carry true CRCs, so a header
    reader takes it for a real PNG."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray, no interlace
    rows = zlib.compress(bytes(1 + width))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
