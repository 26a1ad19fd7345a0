"""A sweep's jobs side by side: a table, a Markdown report, a CSV and a figure, logged on its parent run.

`find_sweep` picks the parent run (by id, else the latest, optionally in one experiment and with
one tag); `compare_sweep` reads its children and writes the comparison. Both `python -m runner.compare`
and the end of every `python -m runner -m ...` sweep go through here.
"""

import dataclasses
import pathlib

import mlflow
from mlflow.entities import Run

from runner.comparison.plots import save_figure
from runner.comparison.rows import Row, sweep_rows
from runner.comparison.select import find_sweep, sweep_children
from runner.comparison.table import csv_text, markdown, terminal_table

__all__ = ["Comparison", "Row", "compare_sweep", "find_sweep"]

MARKDOWN, CSV, FIGURE = "comparison.md", "comparison.csv", "comparison.png"


@dataclasses.dataclass
class Comparison:
    parent: Run
    rows: list[Row]  # best first
    table: str  # the terminal text
    paths: list[pathlib.Path]  # the Markdown, the CSV and the figure, as logged on the parent


def compare_sweep(client: mlflow.MlflowClient, parent_run_id: str, out_dir: pathlib.Path) -> Comparison:
    """Write the comparison of the sweep's children into out_dir and log it on the parent run."""
    parent = client.get_run(parent_run_id)
    rows = sweep_rows(client, parent, sweep_children(client, parent))
    markdown_path, csv_path, figure_path = paths = [out_dir / name for name in (MARKDOWN, CSV, FIGURE)]
    markdown_path.write_text(markdown(parent, rows, FIGURE), encoding="utf-8")
    csv_path.write_text(csv_text(rows), encoding="utf-8")
    save_figure(rows, figure_path)
    for path in paths:
        client.log_artifact(parent_run_id, str(path))
    return Comparison(parent=parent, rows=rows, table=terminal_table(parent, rows), paths=paths)
