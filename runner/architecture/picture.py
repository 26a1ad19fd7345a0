"""The architecture as a picture, drawn from the report's rows as the papers draw their networks.

One box per config row (`picture_cells`), sized to its output feature map, left to right and wrapped
onto several lines, so GoogLeNet's 24 rows fit one page of at most about 21 x 12 inches (2,400 px
at 100 dpi). Matplotlib has no network-diagram artist, so the boxes, arcs and labels are placed
here by hand. Built on matplotlib.figure.Figure, not pyplot, so no display and no global state, as
the run's other figures (runner/tracking/plots.py). Every patch of a row's shape carries the gid
`row:<name>`, which the SVG keeps, so the drawn rows can be counted.
"""

import contextlib
import pathlib
import tempfile
import textwrap
from collections.abc import Iterator, Mapping
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

from builders.report import Report
from runner.architecture.picture_cells import Cell, Scale, cells, scale_of
from runner.architecture.tables import giga

CAPTION = ("How to read it: each box is one row's output, its height following the feature map's side and its "
           "width the channels (both on log scales), with the row's name, output shape, parameters and size "
           "rule below; inception modules show their four branches side by side, an arc is a residual "
           "block's skip connection, stacked halves are AlexNet's two GPU towers, and xN is a row repeated "
           "N times.")
COLOURS = {"conv": "#4c72b0", "maxpool": "#dd8452", "avgpool": "#dd8452", "global_avgpool": "#dd8452",
           "lrn": "#8c8c8c", "dropout": "#cccccc", "flatten": "#937860", "dense": "#55a868",
           "inception": "#8172b3", "basic": "#64b5cd", "bottleneck": "#64b5cd", "aux_classifier": "#c44e52"}
OTHER_COLOUR = "#999999"
# What a block's one box stands for: He et al.'s Figure 5, GoogLeNet's Section 5.
INSIDE = {"basic": "3x3, 3x3 + skip", "bottleneck": "1x1, 3x3, 1x1 + skip",
          "aux_classifier": "side output, training only"}
# Inches: a cell holds one row's box and its labels; the header holds the title and the caption.
CELL_WIDTH, CELL_HEIGHT, BOX_WIDTH, BOX_HEIGHT = 2.3, 2.75, 1.8, 1.4
ABOVE_BOX = 0.4  # room for a skip connection's arc or an inception module's branch labels
MARGIN, HEADER = 0.3, 1.3
MOST_PER_LINE = 9  # 9 cells: 21.3 inches, inside the 24 of a 2,400 px side at 100 dpi
SMALLEST_BOX = 0.06
VECTOR_WIDTH = 0.1  # a flat row's output (flatten, dense) is a thin bar as long as its vector
DPI = 100


def figure(report: Report, spec: Mapping[str, Any]) -> Figure:
    """The network `report` describes; `spec` is the model spec whose rows made its rows."""
    drawn = cells(report, spec)
    per_line = _per_line(len(drawn))
    lines = -(-len(drawn) // per_line)
    width, height = 2 * MARGIN + per_line * CELL_WIDTH, HEADER + lines * CELL_HEIGHT + MARGIN
    result = Figure(figsize=(width, height), dpi=DPI)
    axes = result.add_axes((0, 0, 1, 1))
    axes.set(xlim=(0, width), ylim=(0, height))
    axes.axis("off")
    _header(axes, report, width, height)
    scale = scale_of(drawn)
    for index, cell in enumerate(drawn):
        line, column = divmod(index, per_line)
        left, top = MARGIN + column * CELL_WIDTH, height - HEADER - line * CELL_HEIGHT
        _cell(axes, cell, scale, left, top)
        if column < per_line - 1 and index < len(drawn) - 1:
            _flow_arrow(axes, left + CELL_WIDTH, top - ABOVE_BOX - BOX_HEIGHT / 2,
                        side=cell.type == "aux_classifier" or drawn[index + 1].type == "aux_classifier")
    return result


def save(picture: Figure, path: pathlib.Path) -> None:
    """The picture as PNG or SVG, by the path's suffix."""
    picture.savefig(path, dpi=DPI)


@contextlib.contextmanager
def drawn_file(report: Report, spec: Mapping[str, Any]) -> Iterator[pathlib.Path]:
    """architecture.png in a temporary folder, for a run to log beside architecture.md."""
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "architecture.png"
        save(figure(report, spec), path)
        yield path


def _per_line(count: int) -> int:
    """As many cells on each line as the lines need, at most MOST_PER_LINE: balanced lines."""
    lines = -(-count // MOST_PER_LINE)
    return -(-count // lines)


def _header(axes: Axes, report: Report, width: float, height: float) -> None:
    shape = "x".join(str(size) for size in report.input_shape)
    title = (f"{report.model}: input {shape}, {report.total_params:,} parameters, "
             f"{giga(report.macs)} MACs per image")
    if report.inference_macs != report.macs:
        title += f" ({giga(report.inference_macs)} without the training-only side outputs)"
    axes.text(MARGIN, height - 0.35, title, fontsize=15, weight="bold", va="center")
    caption = textwrap.fill(CAPTION, width=int((width - 2 * MARGIN) * 12))
    axes.text(MARGIN, height - 0.6, caption, fontsize=9.5, va="top", color="#333333", linespacing=1.3)


def _cell(axes: Axes, cell: Cell, scale: Scale, left: float, top: float) -> None:
    centre_x, centre_y = left + CELL_WIDTH / 2, top - ABOVE_BOX - BOX_HEIGHT / 2
    width = max(SMALLEST_BOX, BOX_WIDTH * scale.width(cell)) if len(cell.output_shape) == 3 else VECTOR_WIDTH
    height = max(SMALLEST_BOX, BOX_HEIGHT * scale.height(cell))
    colour = COLOURS.get(cell.type, OTHER_COLOUR)
    gid = f"row:{cell.label}"
    if cell.branches():
        _branches(axes, cell, scale, (centre_x, centre_y), height, colour, gid)
    else:
        _towers(axes, cell.towers, (centre_x, centre_y), (width, height), colour, gid)
    if cell.residual:
        _skip(axes, centre_x, centre_y + height / 2, width)
    _labels(axes, cell, centre_x, top - ABOVE_BOX - BOX_HEIGHT - 0.1)


def _towers(axes: Axes, towers: int, centre: tuple[float, float], size: tuple[float, float], colour: str,
            gid: str) -> None:
    """One box, or a grouped convolution's towers stacked as AlexNet's Figure 2 draws its two GPUs."""
    gap = 0.05 if towers > 1 else 0.0
    width, height = size
    each = max(SMALLEST_BOX, (height - gap * (towers - 1)) / towers)
    bottom = centre[1] - height / 2
    for tower in range(towers):
        _box(axes, (centre[0] - width / 2, bottom + tower * (each + gap)), (width, each), colour, gid)


def _branches(axes: Axes, cell: Cell, scale: Scale, centre: tuple[float, float], height: float,
              colour: str, gid: str) -> None:
    """GoogLeNet's Figure 2(b): the module's branches side by side, each as wide as its channels."""
    branches = cell.branches()
    widths = [max(SMALLEST_BOX, BOX_WIDTH / len(branches) * scale.channels(count)) for _, count in branches]
    gap = 0.06
    left = centre[0] - (sum(widths) + gap * (len(widths) - 1)) / 2
    for (title, count), width in zip(branches, widths):
        _box(axes, (left, centre[1] - height / 2), (width, height), colour, gid)
        axes.text(left + width / 2, centre[1] + height / 2 + 0.04, f"{title}\n{count}", fontsize=6.5,
                  ha="center", va="bottom", linespacing=1.0)
        left += width + gap


def _box(axes: Axes, corner: tuple[float, float], size: tuple[float, float], colour: str, gid: str) -> None:
    axes.add_patch(Rectangle(corner, *size, facecolor=colour, edgecolor="#222222", linewidth=0.8, gid=gid))


def _skip(axes: Axes, centre_x: float, box_top: float, width: float) -> None:
    """He et al.'s Figure 2: the shortcut around the block, an arc from its input to the sum."""
    span = max(width, 0.4) + 0.2
    # arc3 bends by rad x span at its control point, so the arc's peak is rad x span / 2 above the box.
    axes.add_patch(FancyArrowPatch((centre_x - span / 2, box_top), (centre_x + span / 2, box_top),
                                   connectionstyle=f"arc3,rad={-0.5 / span}", arrowstyle="-|>",
                                   mutation_scale=9, linewidth=1.0, color="#222222"))


def _labels(axes: Axes, cell: Cell, centre_x: float, top: float) -> None:
    count = len(cell.rows)
    name = cell.label + (f" x{count}" if count > 1 else "")
    axes.text(centre_x, top, name, fontsize=9.5, weight="bold", ha="center", va="top")
    first = cell.rows[0]
    kind = cell.type + (f" {first.kernel}x{first.kernel}/{first.stride}" if first.kernel else "")
    kind += f" ({INSIDE[cell.type]})" if cell.type in INSIDE else ""
    params = sum(row.params for row in cell.rows)
    lines = [kind, "x".join(str(size) for size in cell.output_shape), f"{params:,} params"]
    if first.size_rule:
        lines += textwrap.wrap(first.size_rule, width=40)
    axes.text(centre_x, top - 0.2, "\n".join(lines), fontsize=7.5, ha="center", va="top", linespacing=1.25)


def _flow_arrow(axes: Axes, x: float, y: float, side: bool) -> None:
    """From one cell to the next; dashed where a side output (an auxiliary classifier) taps the path."""
    axes.add_patch(FancyArrowPatch((x - 0.15, y), (x + 0.15, y), arrowstyle="-|>", mutation_scale=9,
                                   linestyle="--" if side else "-", color="#555555"))
