"""A sweep's jobs side by side: a table, a Markdown report, a CSV and a figure, logged on its parent run.

`compare_sweep` reads a sweep's children and writes the comparison (select.py `find_sweep` picks the
parent run). Both `python -m runner.compare` and the end of every `python -m runner -m ...` sweep
(runner/sweep.py) go through here.
"""

import dataclasses
import pathlib

import mlflow
from mlflow.entities import Run

from runner.compare.groups import by_recipe
from runner.compare.plots import save_figure
from runner.compare.select import sweep_children
from runner.compare.sweep_rows import Row, objective_of, sweep_rows
from runner.compare.table import csv_text, markdown, terminal_table

MARKDOWN, CSV, FIGURE = "comparison.md", "comparison.csv", "comparison.png"


@dataclasses.dataclass
class Comparison:
    parent: Run
    rows: list[Row]  # best first; runs that differ only in trainer.seed share one (groups.py)
    table: str  # the terminal text
    paths: list[pathlib.Path]  # the Markdown, the CSV and the figure, as logged on the parent

    @property
    def written(self) -> str:
        """The line that says where the comparison is: its files, and the parent run that holds them too."""
        return (f"wrote {', '.join(str(path) for path in self.paths)} (also on the sweep's parent run "
                f"{self.parent.info.run_id}, {self.parent.info.run_name})")


def compare_sweep(client: mlflow.MlflowClient, parent_run_id: str, out_dir: pathlib.Path) -> Comparison:
    """Write the comparison of the sweep's children into out_dir and log it on the parent run."""
    parent = client.get_run(parent_run_id)
    children = sweep_children(client, parent)
    rows = by_recipe(sweep_rows(client, parent, children), children, objective_of(parent)[1])
    markdown_path, csv_path, figure_path = paths = [out_dir / name for name in (MARKDOWN, CSV, FIGURE)]
    markdown_path.write_text(markdown(parent, rows, FIGURE), encoding="utf-8")
    csv_path.write_text(csv_text(rows), encoding="utf-8")
    save_figure(rows, figure_path, objective_of(parent)[0])
    for path in paths:
        client.log_artifact(parent_run_id, str(path))
    return Comparison(parent=parent, rows=rows, table=terminal_table(parent, rows), paths=paths)
