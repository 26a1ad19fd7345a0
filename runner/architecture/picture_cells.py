"""What the architecture picture draws: one cell per config row, its applications folded together.

A row with `repeat: n` is applied n times and reported n times (`conv4_block1` ... `conv4_block36`);
the picture draws it once, marked "x36", as ResNet's Table 1 gives a stage once with its count. Each
cell keeps the row's keyword arguments, which say what the report's numbers do not: an inception
module's branch widths, a grouped convolution's towers.
"""

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from builders.model import plan
from builders.report import LayerRow, Report

# GoogLeNet's Figure 2(b): the four branches of a module, left to right, and the keys of their widths.
INCEPTION_BRANCHES = (("1x1", "b1x1"), ("3x3", "b3x3"), ("5x5", "b5x5"), ("pool", "pool_proj"))


@dataclasses.dataclass(frozen=True)
class Cell:
    rows: tuple[LayerRow, ...]  # the applications of one config row, in order
    args: Mapping[str, Any]  # the config row's keyword arguments

    @property
    def label(self) -> str:
        """The row's name: the config's, without `_block<k>` when it repeats."""
        name = self.rows[0].name
        return name.rsplit("_block", 1)[0] if len(self.rows) > 1 else name

    @property
    def output_shape(self) -> list[int]:
        return self.rows[-1].output_shape

    @property
    def type(self) -> str:
        return self.rows[0].type

    def branches(self) -> list[tuple[str, int]]:
        """An inception module's branches and their output channels; [] for other rows."""
        if self.type != "inception":
            return []
        return [(title, int(self.args[key])) for title, key in INCEPTION_BRANCHES]

    @property
    def towers(self) -> int:
        """AlexNet's two GPUs (Section 3.2, Figure 2): a grouped convolution's groups, 1 otherwise."""
        return int(self.args.get("groups", 1))

    @property
    def residual(self) -> bool:
        return self.type in ("basic", "bottleneck")


def cells(report: Report, spec: Mapping[str, Any]) -> list[Cell]:
    """The report's rows grouped by the row of `spec` (the model spec) that made them, as the builders'
    plan applies them: rows an ablation (`without`) or `aux_loss_weight: 0` leaves out make none."""
    applications = plan(spec)
    if len(applications) != len(report.layers):
        raise ValueError(f"{len(report.layers)} report rows for {len(applications)} applications of the model's rows")
    result = []
    for _, members in itertools.groupby(zip(report.layers, applications), key=lambda pair: pair[1].path):
        members = list(members)
        result.append(Cell(tuple(layer for layer, _ in members), members[0][1].args))
    return result


@dataclasses.dataclass(frozen=True)
class Scale:
    """How big a feature map is drawn: log scales, so LeNet's 6 channels and VGG's 512 both read."""
    largest_side: int
    most_channels: int
    longest_vector: int

    def height(self, cell: Cell) -> float:
        """Fraction of the tallest box: a map's side, or a vector's length."""
        shape = cell.output_shape
        if len(shape) == 3:
            return _share(shape[0], self.largest_side)
        return _share(shape[-1], self.longest_vector)

    def width(self, cell: Cell) -> float:
        """Fraction of the widest box: a map's channels; a vector is a thin bar."""
        shape = cell.output_shape
        return _share(shape[-1], self.most_channels) if len(shape) == 3 else 0.0

    def channels(self, count: int) -> float:
        return _share(count, self.most_channels)


def scale_of(all_cells: Sequence[Cell]) -> Scale:
    maps = [cell.output_shape for cell in all_cells if len(cell.output_shape) == 3]
    vectors = [cell.output_shape[-1] for cell in all_cells if len(cell.output_shape) != 3]
    return Scale(max((shape[0] for shape in maps), default=1), max((shape[-1] for shape in maps), default=1),
                 max(vectors, default=1))


def _share(value: int, largest: int) -> float:
    return math.log1p(value) / math.log1p(max(largest, 1))
