"""The comparison as text: a terminal table, a Markdown report and a CSV of the raw values."""

import csv
import dataclasses
import io
from typing import Any, Callable, Optional

from mlflow.entities import Run
from tabulate import tabulate

from runner.compare.rows import Row, objective_of


def _count(value: int) -> str:
    """138357544 -> 138.4M, 61706 -> 61.7K: the papers' way of quoting sizes."""
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if value >= scale:
            return f"{value / scale:.1f}{suffix}"
    return str(value)


def _percent(value: float) -> str:
    return f"{value:.2%}"


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {seconds:02d}s" if minutes else f"{seconds}s"


@dataclasses.dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Row], Any]  # raw, as the CSV holds it; None is an empty cell
    shown: Callable[[Any], str] = str  # as the table and the Markdown show it
    align: str = "right"
    csv_header: Optional[str] = None  # where the raw value's unit differs from the shown one


TEN_CROP = Column("10-crop top-1", lambda row: row.top1_10crop, _percent)
PUBLISHED = Column("published top-1", lambda row: row.published_top1, _percent)
COLUMNS = (
    Column("run", lambda row: row.label, align="left"),
    Column("model", lambda row: row.model, align="left"),
    Column("status", lambda row: row.status, align="left"),
    Column("parameters", lambda row: row.parameters, _count),
    Column("GMACs", lambda row: row.gmacs, lambda value: f"{value:.4g}"),
    Column("top-1", lambda row: row.top1, _percent),
    Column("top-5", lambda row: row.top5, _percent),
    TEN_CROP,
    PUBLISHED,
    Column("epochs", lambda row: row.epochs),
    Column("images/s", lambda row: row.images_per_second, lambda value: f"{value:,.0f}"),
    Column("wall time", lambda row: row.wall_seconds, _duration, csv_header="wall seconds"),
    Column("run id", lambda row: row.run_id, align="left"),
)


def columns_for(rows: list[Row]) -> list[Column]:
    """Every column; the 10-crop and the published one only when some run has them (runs evaluated on
    ten crops; runner.evaluate's runs of weights whose card has their publisher's figures)."""
    optional = {TEN_CROP: lambda row: row.top1_10crop, PUBLISHED: lambda row: row.published_top1}
    shown = {column for column, value in optional.items() if any(value(row) is not None for row in rows)}
    return [column for column in COLUMNS if column not in optional or column in shown]


def _ranking(parent: Run, rows: list[Row]) -> str:
    objective, direction = objective_of(parent)
    return f"parent run {parent.info.run_id}: {len(rows)} runs, best {objective} ({direction}) first"


def terminal_table(parent: Run, rows: list[Row]) -> str:
    overrides = _sweep_overrides(parent)
    title = f"{parent.info.run_name} ({overrides})" if overrides else parent.info.run_name
    return f"{title}, {_ranking(parent, rows)}\n\n{_tabulated(rows, 'simple')}"


def markdown(parent: Run, rows: list[Row], figure_name: str) -> str:
    overrides = _sweep_overrides(parent)
    title = f"## Sweep {parent.info.run_name}" + (f": `{overrides}`" if overrides else "")
    return (f"{title}\n\n{_ranking(parent, rows)}.\n\n{_tabulated(rows, 'github')}\n\n"
            f"![top-1 against size and compute, and per epoch]({figure_name})\n")


def csv_text(rows: list[Row]) -> str:
    columns = columns_for(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([column.csv_header or column.header for column in columns])
    writer.writerows([column.value(row) for column in columns] for row in rows)  # None: empty
    return buffer.getvalue()


def _tabulated(rows: list[Row], table_format: str) -> str:
    columns = columns_for(rows)
    cells = [[_shown(column, row) for column in columns] for row in rows]
    # Cells are formatted here, so tabulate must not re-read "98.61%" or "1,234" as numbers.
    return tabulate(cells, headers=[column.header for column in columns], tablefmt=table_format,
                    colalign=[column.align for column in columns], disable_numparse=True)


def _shown(column: Column, row: Row) -> str:
    value = column.value(row)
    return "" if value is None else column.shown(value)


def _sweep_overrides(parent: Run) -> str:
    return parent.data.params.get("sweep.overrides", "")
