"""The comparison as text: a terminal table, a Markdown report and a CSV of the raw values."""

import csv
import dataclasses
import io
from typing import Any, Callable, Optional

from mlflow.entities import Run
from tabulate import tabulate

from runner.compare.groups import standing
from runner.compare.sweep_rows import Row, objective_of


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
    spread: Optional[str] = None  # the Row field whose mean ± std over the seeds the column shows


def _pooled(header: str, field: str) -> Column:
    return Column(header, lambda row: getattr(row, field), _percent, spread=field)


TEN_CROP = _pooled("10-crop top-1", "top1_10crop")
MULTISCALE = _pooled("multi-scale top-1", "top1_multiscale")
PUBLISHED = Column("published top-1", lambda row: row.published_top1, _percent)
EPOCHS = Column("epochs", lambda row: row.epochs, lambda value: f"{value:.3g}")  # a mean where rows pool seeds
COLUMNS = (
    Column("run", lambda row: row.label, align="left"),
    Column("model", lambda row: row.model, align="left"),
    Column("status", lambda row: row.status, align="left"),
    Column("parameters", lambda row: row.parameters, _count),
    Column("GMACs", lambda row: row.gmacs, lambda value: f"{value:.4g}"),
    _pooled("top-1", "top1"),
    _pooled("top-5", "top5"),
    TEN_CROP,
    MULTISCALE,
    PUBLISHED,
    EPOCHS,
    Column("images/s", lambda row: row.images_per_second, lambda value: f"{value:,.0f}"),
    Column("wall time", lambda row: row.wall_seconds, _duration, csv_header="wall seconds"),
    Column("run id", lambda row: " ".join(row.run_ids) or row.run_id, align="left"),
)


def columns_for(rows: list[Row]) -> list[Column]:
    """Every column; the 10-crop, multi-scale and published ones only when some run has them (runs
    evaluated on ten crops or at eval.scales; runner.evaluate's runs of weights whose card has their
    publisher's figures); where rows pool seeds, after the metrics, how each row stands against the
    best (groups.py `standing`)."""
    optional = {TEN_CROP: lambda row: row.top1_10crop, MULTISCALE: lambda row: row.top1_multiscale,
                PUBLISHED: lambda row: row.published_top1}
    shown = {column for column, value in optional.items() if any(value(row) is not None for row in rows)}
    columns = [column for column in COLUMNS if column not in optional or column in shown]
    if pooling(rows):
        marks = dict(zip(map(id, rows), standing(rows)))
        columns.insert(columns.index(EPOCHS), Column("vs best", lambda row: marks[id(row)], align="left"))
    return columns


def pooling(rows: list[Row]) -> bool:
    return any(row.n > 1 for row in rows)


def _ranking(parent: Run, rows: list[Row]) -> str:
    objective, direction = objective_of(parent)
    if not pooling(rows):
        return f"parent run {parent.info.run_id}: {len(rows)} runs, best {objective} ({direction}) first"
    return (f"parent run {parent.info.run_id}: {sum(row.n for row in rows)} runs in {len(rows)} rows, best "
            f"{objective} ({direction}) first; runs that differ only in trainer.seed share a row: mean ± sample "
            f"std (n runs); \"not distinguishable\": the row's {objective} mean ± std overlaps the best row's")


def _single_seed(rows: list[Row]) -> str:
    """After the table, where trained rows pool no seeds: what a difference between rows cannot tell."""
    if pooling(rows) or not any(row.trained for row in rows):
        return ""
    return ("\n\nSingle-seed comparison: each row is one run, so differences within the typical spread between "
            "seeds cannot be told apart (repeat the sweep with -m trainer.seed=0,1,2 for mean ± std).")


def terminal_table(parent: Run, rows: list[Row]) -> str:
    overrides = _sweep_overrides(parent)
    title = f"{parent.info.run_name} ({overrides})" if overrides else parent.info.run_name
    return f"{title}, {_ranking(parent, rows)}\n\n{_tabulated(rows, 'simple')}{_single_seed(rows)}"


def markdown(parent: Run, rows: list[Row], figure_name: str) -> str:
    overrides = _sweep_overrides(parent)
    title = f"## Sweep {parent.info.run_name}" + (f": `{overrides}`" if overrides else "")
    return (f"{title}\n\n{_ranking(parent, rows)}.\n\n{_tabulated(rows, 'github')}{_single_seed(rows)}\n\n"
            f"![top-1 against size and compute, and per epoch]({figure_name})\n")


def csv_text(rows: list[Row]) -> str:
    """Raw values; a metric with a spread as three columns, its mean, sample std (empty below two runs)
    and n; the other numbers of a row that pools seeds are means (epochs, images/s, wall seconds)."""
    columns = columns_for(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([header for column in columns for header in _csv_headers(column)])
    writer.writerows([cell for column in columns for cell in _csv_cells(column, row)] for row in rows)  # None: empty
    return buffer.getvalue()


def _csv_headers(column: Column) -> list[str]:
    header = column.csv_header or column.header
    return [f"{header} mean", f"{header} std", f"{header} n"] if column.spread else [header]


def _csv_cells(column: Column, row: Row) -> list:
    value = column.value(row)
    if not column.spread:
        return [value]
    spread = row.spread.get(column.spread)
    return [value, spread.std, spread.n] if spread else [value, None, int(value is not None)]


def _tabulated(rows: list[Row], table_format: str) -> str:
    columns = columns_for(rows)
    cells = [[_shown(column, row, pooling(rows)) for column in columns] for row in rows]
    # Cells are formatted here, so tabulate must not re-read "98.61%" or "1,234" as numbers.
    return tabulate(cells, headers=[column.header for column in columns], tablefmt=table_format,
                    colalign=[column.align for column in columns], disable_numparse=True)


def _shown(column: Column, row: Row, pooled: bool) -> str:
    """The value; where rows pool seeds, a metric as "97.10 ± 0.40% (n=3)" (one run: "97.10% (n=1)")."""
    value = column.value(row)
    if value is None:
        return ""
    if not (pooled and column.spread):
        return column.shown(value)
    spread = row.spread.get(column.spread)
    if not spread or spread.std is None:
        return f"{column.shown(value)} (n={spread.n if spread else 1})"
    return f"{value * 100:.2f} ± {spread.std * 100:.2f}% (n={spread.n})"  # the spread columns are fractions


def _sweep_overrides(parent: Run) -> str:
    return parent.data.params.get("sweep.overrides", "")
