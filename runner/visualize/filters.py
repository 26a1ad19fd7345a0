"""A network's first-layer filters as a figure a person can read, one colour scale per layer.

Zeiler & Fergus 2014 (Section 4.1, Figure 6) compare AlexNet's first-layer filters with their own:
AlexNet's 11x11/4 leaves some filters dead and others a mix of extreme frequencies. Whether a
filter is dead shows only on a scale shared by all of a layer's filters: each filter stretched to
its own range (min to max) makes a dead one look as strong as any. So a panel
draws every filter from -m to +m, m = the largest |value drawn|, 0 grey, under a colour bar:
  RGB kernels (3 input channels): each channel's weight -m..+m as that channel's 0..1;
  other depths: the mean over the input channels, in the diverging DIVERGING colormap (coolwarm).

Sizes are exact (`panel_size`, `compared_size`): a panel of F filters kh x kw has
  columns = ceil(sqrt F), lines = ceil(F / columns)              (figures.square_layout)
  t      = the least multiple of lcm(kh, kw) >= max(64, ceil(796 / columns) - 4): the tile side, so
           each weight is a whole t/kh x t/kw block (nearest neighbour) and the panel >= 800 px wide
  width  = 4 + columns * (t + 4)                                  (>= MIN_WIDTH = 800)
  height = 24 + lines * (12 + t + 4) + 4 + 32                     (figures.grid_size, FOOTER = 32)
Panels compared side by side: width = the sum of their widths, height = 24 + the tallest height.
"""

import dataclasses
import math
import os
from collections.abc import Sequence

import keras
import matplotlib
import numpy as np

from runner.mistakes.errors import UserError
from runner.visualize import figures
from runner.weights import saved

MIN_WIDTH = 800  # pixels: 6 LeNet filters used to make 320, which nobody can read
DIVERGING = "coolwarm"  # its middle is grey, as the RGB scale's
BAR = 12  # pixels: the colour bar's height
FOOTER = figures.PAD + BAR + 16  # the bar and its labels under the tiles


@dataclasses.dataclass(frozen=True)
class Filters:
    """A convolution's kernel [kh, kw, input channels / groups, filters] and what a heading says of it."""

    kernel: np.ndarray
    strides: tuple[int, int]
    layer: str

    @classmethod
    def of(cls, layer: keras.layers.Conv2D) -> "Filters":
        return cls(keras.ops.convert_to_numpy(layer.kernel).astype(np.float32), tuple(layer.strides), layer.name)

    @property
    def colour(self) -> bool:
        return self.kernel.shape[2] == 3

    def drawn(self) -> np.ndarray:
        """What a tile shows: [kh, kw, 3, F] for RGB kernels, else the mean over input channels [kh, kw, F]."""
        return self.kernel if self.colour else self.kernel.mean(axis=2)

    def describe(self) -> str:
        height, width, depth, count = self.kernel.shape
        stride = str(self.strides[0]) if len(set(self.strides)) == 1 else "x".join(map(str, self.strides))
        return f"{self.layer}: {count} filters {height}x{width}x{depth}, stride {stride}"


def first_conv(model: keras.Model) -> keras.layers.Conv2D:
    """The network's first Conv2D (inside a saved stand-alone model, the network's, not its preprocessing's)."""
    network = saved.network(model)
    for layer in network.layers:
        if isinstance(layer, keras.layers.Conv2D):
            return layer
    raise UserError(f"model {network.name} has no Conv2D layer, so no first-layer filters to draw")


def tile_size(count: int, kernel_height: int, kernel_width: int) -> int:
    """The side of one filter's tile: see the module's docstring."""
    columns = figures.square_layout(count)[1]
    least = max(figures.TILE, math.ceil((MIN_WIDTH - figures.PAD) / columns) - figures.PAD)
    step = math.lcm(kernel_height, kernel_width)
    return math.ceil(least / step) * step


def panel_size(count: int, kernel_height: int, kernel_width: int) -> tuple[int, int]:
    """(width, height) in pixels of the panel of `count` filters kernel_height x kernel_width."""
    return figures.grid_size(*figures.square_layout(count), tile_size(count, kernel_height, kernel_width), FOOTER)


def compared_size(shapes: Sequence[tuple[int, int, int]]) -> tuple[int, int]:
    """(width, height) of panels side by side, each given as (count, kernel_height, kernel_width)."""
    sizes = [panel_size(*shape) for shape in shapes]
    return sum(width for width, _ in sizes), figures.TITLE + max(height for _, height in sizes)


def model_filters(model: keras.Model, path: os.PathLike) -> os.PathLike:
    """The model's first-layer filters as one panel at `path` (PNG of panel_size)."""
    return _panel(saved.network(model).name, Filters.of(first_conv(model))).save(path)


def compared_filters(panels: Sequence[tuple[str, keras.layers.Conv2D | Filters]], title: str,
                     path: os.PathLike) -> os.PathLike:
    """Panels side by side under `title`, each headed by its caption (e.g. the model and its metric)
    and its layer; each panel has its own colour scale. A PNG of compared_size."""
    if not panels:
        raise ValueError("compared_filters needs at least one panel")
    drawn = [_panel(caption, filters if isinstance(filters, Filters) else Filters.of(filters))
             for caption, filters in panels]
    return figures.side_by_side(drawn, title).save(path)


def _panel(caption: str, filters: Filters) -> figures.Grid:
    height, width, depth, count = filters.kernel.shape
    lines, columns = figures.square_layout(count)
    values = filters.drawn()
    bound = float(np.max(np.abs(values))) or 1.0  # an all-zero kernel: any scale draws it grey
    scale = "each RGB channel on one scale" if filters.colour else (
        "one colour scale" if depth == 1 else f"mean over {depth} input channels, one scale")
    grid = figures.Grid(lines, columns, f"{caption}\n{filters.describe()}; {scale} -m..+m, 0 grey",
                        tile_size=tile_size(count, height, width), footer=FOOTER)
    for index in range(count):
        if filters.colour:
            grid.tile(*divmod(index, columns), (values[..., index] + bound) / (2 * bound), str(index))
        else:
            grid.tile(*divmod(index, columns), values[..., index], str(index), cmap=DIVERGING,
                      vmin=-bound, vmax=bound)
    _colour_bar(grid, bound, filters.colour)
    return grid


def _colour_bar(grid: figures.Grid, bound: float, colour: bool) -> None:
    """A bar across the panel's foot from -m to +m, labelled at -m, 0 and +m."""
    top, left, right = grid.footer_top, figures.PAD, grid.width - figures.PAD
    ramp = np.linspace(0, 1, right - left, dtype=np.float32)
    pixels = np.repeat(ramp[:, None], 3, axis=1) if colour else matplotlib.colormaps[DIVERGING](ramp)[:, :3]
    grid.paint(top, left, np.broadcast_to(pixels, (BAR, *pixels.shape)))
    below = top + BAR + 1
    grid.text(left, below, f"-m = {-bound:.3g}")
    grid.text((left + right) / 2, below, "0", ha="center")
    grid.text(right, below, f"+m = {bound:.3g}", ha="right")
