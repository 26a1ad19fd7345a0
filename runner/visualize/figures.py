"""Grids of square tiles with a label strip above each, written as PNGs of a size fixed by the grid.

A grid of `lines` x `columns` tiles is exactly
    width  = max(MIN_WIDTH, PAD + columns * (TILE + PAD)) pixels,
    height = TITLE + lines * (LABEL + TILE + PAD) + PAD pixels,
whatever the pictures in it: each is scaled to its TILE x TILE square (nearest neighbour) and
pasted into one pixel canvas, so a grid of hundreds of tiles costs one image, not hundreds of axes.
"""

import math
import os

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


def grid_size(lines: int, columns: int) -> tuple[int, int]:
    """(width, height) in pixels of a PNG of `lines` x `columns` tiles."""
    return max(MIN_WIDTH, PAD + columns * (TILE + PAD)), TITLE + lines * (LABEL + TILE + PAD) + PAD


def square_layout(count: int) -> tuple[int, int]:
    """(lines, columns) of the squarest grid holding `count` tiles, filled line by line."""
    columns = math.ceil(math.sqrt(count))
    return math.ceil(count / columns), columns


class Grid:
    def __init__(self, lines: int, columns: int, title: str):
        self.width, self.height = grid_size(lines, columns)
        self.canvas = np.ones((self.height, self.width, 3), np.float32)
        self.texts = [(PAD, TITLE / 2, title, 7, "center")]  # (x, y from the top, text, size, alignment)

    def tile(self, line: int, column: int, picture: np.ndarray, label: str = "", *, cmap: str = "gray",
             vmin: float = 0.0, vmax: float = 1.0) -> None:
        """`picture`: [h, w, 3] in [0, 1], or [h, w] drawn with `cmap` from vmin to vmax."""
        top, left = self._origin(line, column)
        picture = np.asarray(picture, np.float32)
        if picture.ndim == 2:
            scaled = np.clip((picture - vmin) / max(vmax - vmin, 1e-12), 0, 1)
            picture = matplotlib.colormaps[cmap](scaled)[..., :3]
        rows = np.arange(TILE) * picture.shape[0] // TILE
        columns = np.arange(TILE) * picture.shape[1] // TILE
        self.canvas[top : top + TILE, left : left + TILE] = np.clip(picture[rows][:, columns], 0, 1)
        if label:
            self.texts.append((left, top - 1, label, 6.5, "bottom"))

    def mark(self, line: int, column: int, y: float, x: float) -> None:
        """A ring around the point (y, x), given as fractions of the tile's height and width."""
        top, left = self._origin(line, column)
        grid_y, grid_x = np.mgrid[0:TILE, 0:TILE] + 0.5
        distance = np.hypot(grid_y - y * TILE, grid_x - x * TILE)
        self.canvas[top : top + TILE, left : left + TILE][np.abs(distance - MARK_RADIUS) < 0.8] = MARK

    def save(self, path: os.PathLike) -> os.PathLike:
        # Half a pixel more: Agg truncates width * dpi, which float rounding can put just under.
        figure = Figure(figsize=((self.width + 0.5) / DPI, (self.height + 0.5) / DPI), dpi=DPI)
        figure.figimage(self.canvas, 0, 0, origin="upper")
        for x, y, text, size, alignment in self.texts:
            figure.text(x / self.width, 1 - y / self.height, text, fontsize=size, va=alignment, linespacing=1.1)
        figure.savefig(path, dpi=DPI)
        return path

    def _origin(self, line: int, column: int) -> tuple[int, int]:
        return TITLE + line * (LABEL + TILE + PAD) + LABEL, PAD + column * (TILE + PAD)


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
