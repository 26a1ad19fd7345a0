"""Grids of square tiles with a label strip above each, written as PNGs of a size fixed by the grid.

A grid of `lines` x `columns` tiles of `tile_size` (TILE unless given) pixels, with `footer` pixels
below them (none unless given) for what a figure adds, such as a colour bar, is exactly
    width  = max(MIN_WIDTH, PAD + columns * (tile_size + PAD)) pixels,
    height = TITLE + lines * (LABEL + tile_size + PAD) + PAD + footer pixels,
whatever the pictures in it: each is scaled to its square (nearest neighbour) and pasted into one
pixel canvas, so a grid of hundreds of tiles costs one image, not hundreds of axes. Grids placed
side by side under a title (`side_by_side`) make one PNG of their summed widths and TITLE + the
tallest height.
"""

import math
import os
import textwrap

import matplotlib
import numpy as np
from matplotlib.figure import Figure

DPI = 100
TILE = 64  # pixels of one picture
PAD = 4  # between tiles and around the grid
LABEL = 12  # the strip above a tile for its label
TITLE = 24  # the strip above the grid for its title (two lines)
MIN_WIDTH = 320  # room for the title
MARK = (1.0, 0.0, 0.0)  # colour of a marked position
MARK_RADIUS = 3.5  # pixels
CAPTION = 44  # a footer for a figure's one-sentence caption: four lines of 6-point text


def grid_size(lines: int, columns: int, tile_size: int = TILE, footer: int = 0) -> tuple[int, int]:
    """(width, height) in pixels of a PNG of `lines` x `columns` tiles of `tile_size` pixels, `footer` below."""
    return (max(MIN_WIDTH, PAD + columns * (tile_size + PAD)),
            TITLE + lines * (LABEL + tile_size + PAD) + PAD + footer)


def square_layout(count: int) -> tuple[int, int]:
    """(lines, columns) of the squarest grid holding `count` tiles, filled line by line."""
    columns = math.ceil(math.sqrt(count))
    return math.ceil(count / columns), columns


class Canvas:
    """White pixels and the texts on them, saved as one PNG of exactly width x height pixels."""

    def __init__(self, width: int, height: int, title: str):
        self.width, self.height = width, height
        self.canvas = np.ones((height, width, 3), np.float32)
        self.texts = []  # (x, y from the top, text, size, vertical alignment, horizontal alignment)
        self.text(PAD, TITLE / 2, title, 7, "center")

    def text(self, x: float, y: float, text: str, size: float = 6.5, va: str = "top", ha: str = "left") -> None:
        self.texts.append((x, y, text, size, va, ha))

    def paint(self, top: int, left: int, pixels: np.ndarray) -> None:
        """`pixels` [h, w, 3] in [0, 1] with their top left corner at (top, left)."""
        self.canvas[top : top + pixels.shape[0], left : left + pixels.shape[1]] = np.clip(pixels, 0, 1)

    def save(self, path: os.PathLike) -> os.PathLike:
        # Half a pixel more: Agg truncates width * dpi, which float rounding can put just under.
        figure = Figure(figsize=((self.width + 0.5) / DPI, (self.height + 0.5) / DPI), dpi=DPI)
        figure.figimage(self.canvas, 0, 0, origin="upper")
        for x, y, text, size, va, ha in self.texts:
            figure.text(x / self.width, 1 - y / self.height, text, fontsize=size, va=va, ha=ha, linespacing=1.1)
        figure.savefig(path, dpi=DPI)
        return path


class Grid(Canvas):
    def __init__(self, lines: int, columns: int, title: str, *, tile_size: int = TILE, footer: int = 0):
        super().__init__(*grid_size(lines, columns, tile_size, footer), title)
        self.tile_size = tile_size
        self.footer_top = self.height - footer  # the first pixel line below the tiles

    def tile(self, line: int, column: int, picture: np.ndarray, label: str = "", *, cmap: str = "gray",
             vmin: float = 0.0, vmax: float = 1.0) -> None:
        """`picture`: [h, w, 3] in [0, 1], or [h, w] drawn with `cmap` from vmin to vmax."""
        top, left = self._origin(line, column)
        picture = np.asarray(picture, np.float32)
        if picture.ndim == 2:
            scaled = np.clip((picture - vmin) / max(vmax - vmin, 1e-12), 0, 1)
            picture = matplotlib.colormaps[cmap](scaled)[..., :3]
        rows = np.arange(self.tile_size) * picture.shape[0] // self.tile_size
        columns = np.arange(self.tile_size) * picture.shape[1] // self.tile_size
        self.paint(top, left, picture[rows][:, columns])
        if label:
            self.text(left, top - 1, label, 6.5, "bottom")

    def mark(self, line: int, column: int, y: float, x: float) -> None:
        """A ring around the point (y, x), given as fractions of the tile's height and width."""
        top, left = self._origin(line, column)
        side = self.tile_size
        grid_y, grid_x = np.mgrid[0:side, 0:side] + 0.5
        distance = np.hypot(grid_y - y * side, grid_x - x * side)
        self.canvas[top : top + side, left : left + side][np.abs(distance - MARK_RADIUS) < 0.8] = MARK

    def caption(self, text: str) -> None:
        """`text` wrapped to the grid's width in a footer of CAPTION pixels (made with footer=CAPTION)."""
        self.text(PAD, self.footer_top + 2, "\n".join(textwrap.wrap(text, self.width // 5)), 6)

    def _origin(self, line: int, column: int) -> tuple[int, int]:
        return TITLE + line * (LABEL + self.tile_size + PAD) + LABEL, PAD + column * (self.tile_size + PAD)


def side_by_side(canvases: list[Canvas], title: str) -> Canvas:
    """`canvases` left to right, tops aligned, under a strip of TITLE pixels for `title`."""
    joined = Canvas(sum(canvas.width for canvas in canvases), TITLE + max(canvas.height for canvas in canvases), title)
    left = 0
    for canvas in canvases:
        joined.paint(TITLE, left, canvas.canvas)
        joined.texts += [(x + left, y + TITLE, *rest) for x, y, *rest in canvas.texts]
        left += canvas.width
    return joined


def rescaled(values: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """`values` mapped linearly onto [0, 1] (from their own min and max unless given); a constant gives 0.5."""
    low = float(np.min(values)) if low is None else low
    high = float(np.max(values)) if high is None else high
    if high - low < 1e-12:
        return np.full(values.shape, 0.5, np.float32)
    return np.clip((values - low) / (high - low), 0, 1).astype(np.float32)


def picture(image: np.ndarray) -> np.ndarray:
    """An [h, w, 1 or 3] image in [0, 1] as a tile draws it: [h, w] (gray) or [h, w, 3]."""
    return image[..., 0] if image.shape[-1] == 1 else np.clip(image, 0, 1)
