"""The comparison figure: top-1 against size and against compute, and every run's curves per epoch.

A sweep of hyperparameters over one model has one size and one cost: its figure plots the sweep's
objective against each swept key instead (a log axis for rates and decays, which sweeps space
geometrically), one panel per key.

The third panel reads like Figure 4 of the ResNet paper: top-1 error (the papers' unit), one colour
per run, validation solid, training dashed, so over- and under-fitting nets, and a deeper plain net
that trains worse than a shallower one (degradation), separate at a glance. Built on
matplotlib.figure.Figure with an Agg canvas, as the run's own figures: no pyplot state to close, no display.

A row that pools seeds (groups.py) is its means: a point with an error bar of ± one sample std, and a
mean validation curve in a band of ± one std per epoch.
"""

import math
import pathlib
from typing import Callable, Optional

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from runner.compare.groups import SEED
from runner.compare.sweep_rows import Row

RUNS_PER_LEGEND_COLUMN = 20
MAX_HYPERPARAMETER_PANELS = 4
LOG_SCALED = ("lr", "weight_decay", "min_lr")  # keys (their last part) swept over decades


def save_figure(rows: list[Row], path: pathlib.Path, objective: str) -> None:
    figure(rows, objective).savefig(path, dpi=110)


def figure(rows: list[Row], objective: str) -> Figure:
    keys = hyperparameters(rows)
    panels = len(keys) or 2
    drawing = Figure(figsize=(19 / 3 * (panels + 1), 5.5), layout="constrained")  # 19 inches for three
    FigureCanvasAgg(drawing)
    *against, per_epoch = drawing.subplots(1, panels + 1)
    colours = _colours(len(rows))
    if keys:
        for axes, key in zip(against, keys):
            _against_key(axes, rows, colours, key, objective)
    else:
        _scatter(against[0], rows, colours, lambda row: row.parameters, "parameters")
        _scatter(against[1], rows, colours, lambda row: row.gmacs, "GMACs per image")
    _curves(per_epoch, rows, colours)
    return drawing


def hyperparameters(rows: list[Row]) -> list[str]:
    """The keys a sweep varies when it does not vary the model (nor the data); none otherwise. Never the
    seed: it varies no recipe, and runs that differ only in it share a row."""
    keys = list(dict.fromkeys(key for row in rows for key in row.swept if key.lstrip("+") != SEED))
    if len({row.model for row in rows}) > 1 or any(key.split(".")[0] in ("model", "data") for key in keys):
        return []
    return keys[:MAX_HYPERPARAMETER_PANELS]


def log_scaled(key: str, values: list[float]) -> bool:
    return key.rsplit(".", 1)[-1] in LOG_SCALED and all(value > 0 for value in values)


def _against_key(axes, rows: list[Row], colours: list, key: str, objective: str) -> None:
    axes.set_title(f"{objective} against {key}")
    axes.set_ylabel(objective)
    points = [(row.swept[key], row.objective, _std(row, "objective"), colour) for row, colour in zip(rows, colours)
              if key in row.swept and row.objective is not None and not math.isnan(row.objective)]
    if not points:
        _say(axes, f"no run has both {objective} and {key}")
        return
    values = [_number(value) for value, *_ in points]
    if all(value is not None for value in values):
        xs = values
        if log_scaled(key, values):
            axes.set_xscale("log")
        axes.set_xlabel(key + (" (log scale)" if axes.get_xscale() == "log" else ""))
    else:  # categories (an optimizer's name): one position each, in first-seen order
        categories = list(dict.fromkeys(value for value, *_ in points))
        xs = [categories.index(value) for value, *_ in points]
        axes.set_xticks(range(len(categories)), categories)
        axes.set_xlabel(key)
    for x, (_, y, std, colour) in zip(xs, points):
        axes.scatter(x, y, color=colour)
        _error_bar(axes, x, y, std, colour)
    axes.margins(0.15)
    axes.grid(True, which="both", alpha=0.3)


def _number(text: str) -> Optional[float]:
    try:
        return float(text)
    except ValueError:
        return None


def _scatter(axes, rows: list[Row], colours: list, x_of: Callable[[Row], Optional[float]], x_name: str) -> None:
    axes.set_title(f"top-1 against {x_name}")
    axes.set_xlabel(f"{x_name} (log scale)")
    axes.set_ylabel("top-1 (%)")
    points = [(x_of(row), row.top1 * 100, _std(row, "top1", 100), row.label, colour)
              for row, colour in zip(rows, colours) if x_of(row) and row.top1 is not None]
    if not points:
        _say(axes, f"no run has both top-1 and {x_name}")
        return
    for x, y, std, label, colour in points:
        axes.scatter(x, y, color=colour)
        _error_bar(axes, x, y, std, colour)
        axes.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    axes.set_xscale("log")
    axes.margins(0.15)  # room for the labels of the outermost points
    axes.grid(True, which="both", alpha=0.3)


def _curves(axes, rows: list[Row], colours: list) -> None:
    axes.set_title("top-1 error per epoch: validation solid, training dashed")
    axes.set_xlabel("epoch")
    axes.set_ylabel("top-1 error (%)")
    plotted = [(row, colour) for row, colour in zip(rows, colours) if row.val_top1_curve or row.top1_curve]
    if not plotted:
        _say(axes, "no run recorded an epoch")
        return
    for row, colour in plotted:
        _line(axes, row.val_top1_curve, colour, "-", row.label + (f" (mean of {row.n})" if row.n > 1 else ""))
        _band(axes, row.val_top1_curve, row.val_top1_std, colour)
        _line(axes, row.top1_curve, colour, "--", None if row.val_top1_curve else row.label)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(fontsize="small", ncol=math.ceil(len(plotted) / RUNS_PER_LEGEND_COLUMN))
    axes.grid(True, alpha=0.3)


def _line(axes, curve: list[tuple[int, float]], colour, style: str, label: Optional[str]) -> None:
    if curve:
        epochs, values = zip(*curve)
        # Markers, so a one-epoch run still shows a point.
        axes.plot(np.array(epochs) + 1, (1 - np.array(values)) * 100, style, marker="o", markersize=3,
                  color=colour, label=label)


def _std(row: Row, field: str, scale: float = 1.0) -> Optional[float]:
    spread = row.spread.get(field)
    return spread.std * scale if spread and spread.std is not None else None


def _error_bar(axes, x, y: float, std: Optional[float], colour) -> None:
    if std is not None:
        axes.errorbar(x, y, yerr=std, fmt="none", ecolor=colour, capsize=4)


def _band(axes, means: list[tuple[int, float]], stds: list[tuple[int, float]], colour) -> None:
    """± one std of the top-1 error around the mean curve, at the epochs two or more runs reached."""
    mean_at = dict(means)
    if stds:
        epochs, spread = (np.array(column) for column in zip(*stds))
        error = (1 - np.array([mean_at[epoch] for epoch in epochs])) * 100
        axes.fill_between(epochs + 1, error - spread * 100, error + spread * 100, color=colour, alpha=0.2,
                          linewidth=0)


def _colours(count: int) -> list:
    """Distinct colours; past ten runs, evenly spread over a continuous map."""
    if count <= 10:
        return [matplotlib.colormaps["tab10"](index) for index in range(count)]
    return list(matplotlib.colormaps["turbo"](np.linspace(0, 1, count)))


def _say(axes, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes)
