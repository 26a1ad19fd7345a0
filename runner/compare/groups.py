"""Runs of one recipe under different seeds as one row: each metric's mean, sample std and n.

A run's recipe is its params (the resolved config, flattened: runner/tracking/labels.py) less
trainer.seed and the params that change nothing a run computes (`not_recipe`). Finished runs of one
recipe share a row. A failed or running job keeps a row of its own, so no failure hides inside a
mean; so does a run without params (recorded before they were: nothing to compare). Repeats of one
seed count as runs too, though they add no spread.
"""

import dataclasses
import math
import statistics
from typing import Optional

from mlflow.entities import Run

from runner.compare.sweep_rows import Row, Spread, label_of, sorted_best_first

SEED = "trainer.seed"
# Params that never tell two recipes apart: where a run records and what it is called (tracking.*),
# the describe app's output (describe.*), the sweep's bookkeeping (sweep.*: its objective picks the
# best run and trains nothing), where a cache is written, whether a resume point is picked up
# (resume is exact, tests/test_resume.py), and a check made before training starts.
NOT_RECIPE_PREFIXES = ("tracking.", "describe.", "sweep.")
NOT_RECIPE_KEYS = frozenset({SEED, "trainer.resume", "trainer.resume_run", "data.cache_dir",
                             "trainer.skip_memory_check"})
POOLED = ("top1", "top5", "top1_10crop", "top1_multiscale", "objective")  # mean, and spread: what the comparison ranks
AVERAGED = ("epochs", "images_per_second", "wall_seconds")  # means alone: what a run cost
SHARED = ("model", "parameters", "gmacs", "published_top1")  # one recipe, one model: any run's value


def not_recipe(key: str) -> bool:
    return key in NOT_RECIPE_KEYS or key.startswith(NOT_RECIPE_PREFIXES)


def recipe(params: dict[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset((key, value) for key, value in params.items() if not not_recipe(key))


def by_recipe(rows: list[Row], children: list[Run], direction: str) -> list[Row]:
    """`rows` (one per child) with each recipe's finished runs pooled into one row, best mean first."""
    params = {child.info.run_id: child.data.params for child in children}
    groups: dict[object, list[Row]] = {}
    for row in rows:
        poolable = row.status == "FINISHED" and params.get(row.run_id)
        groups.setdefault(recipe(params[row.run_id]) if poolable else row.run_id, []).append(row)
    seeds = {run_id: run_params.get(SEED, "") for run_id, run_params in params.items()}
    return sorted_best_first([pooled(members, seeds) for members in groups.values()], direction)


def pooled(members: list[Row], seeds: dict[str, str]) -> Row:
    """One row for the runs of one recipe; a lone run's row as it is."""
    if len(members) == 1:
        return members[0]
    members = sorted(members, key=lambda row: _seed_order(seeds.get(row.run_id, "")))
    first = members[0]
    swept = {key: value for key, value in first.swept.items() if key.lstrip("+") != SEED}
    means = {name: _mean([getattr(row, name) for row in members]) for name in (*POOLED, *AVERAGED)}
    shared = {name: next((getattr(row, name) for row in members if getattr(row, name) is not None), None)
              for name in SHARED}
    val_top1, val_top1_std = _mean_curve([row.val_top1_curve for row in members])
    return dataclasses.replace(
        first, **means, **shared,
        label=label_of(swept) or f"{SEED}={','.join(seeds.get(row.run_id, '?') for row in members)}",
        swept=swept, run_ids=tuple(row.run_id for row in members),
        spread={name: _spread([getattr(row, name) for row in members]) for name in POOLED},
        val_top1_curve=val_top1, val_top1_std=val_top1_std,
        top1_curve=_mean_curve([row.top1_curve for row in members])[0])


def standing(rows: list[Row]) -> list[str]:
    """Per row (best first) against the best: "best"; "not distinguishable" where the mean ± std intervals
    of the objective overlap, so the seeds' spread cannot tell the two apart; "worse" where they do not;
    empty without the objective. Not a significance test: a rule of thumb that errs towards calling
    rows alike (a lone run's interval is its value)."""
    best = next((row for row in rows if _scored(row.objective)), None)
    return [_against(row, best) for row in rows]


def _against(row: Row, best: Optional[Row]) -> str:
    if row is best:
        return "best"
    if best is None or not _scored(row.objective):
        return ""
    (low, high), (best_low, best_high) = _interval(row), _interval(best)
    return "not distinguishable" if low <= best_high and best_low <= high else "worse"


def _interval(row: Row) -> tuple[float, float]:
    spread = row.spread.get("objective")
    std = spread.std if spread and spread.std is not None else 0.0
    return row.objective - std, row.objective + std


def _scored(value: Optional[float]) -> bool:
    return value is not None and not math.isnan(value)


def _mean(values: list) -> Optional[float]:
    present = [value for value in values if value is not None]
    return statistics.mean(present) if present else None


def _spread(values: list) -> Spread:
    """Sample standard deviation (Bessel's n - 1): the seeds are a sample of the recipe's outcomes."""
    present = [value for value in values if value is not None]
    return Spread(statistics.stdev(present) if len(present) > 1 else None, len(present))


def _mean_curve(curves: list[list[tuple[int, float]]]) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """Per epoch, the mean and sample std over the runs that reached it (early stopping ends some sooner)."""
    epochs = sorted({epoch for curve in curves for epoch, _ in curve})
    at = [[value for curve in curves for step, value in curve if step == epoch] for epoch in epochs]
    means = [(epoch, statistics.mean(values)) for epoch, values in zip(epochs, at)]
    stds = [(epoch, statistics.stdev(values)) for epoch, values in zip(epochs, at) if len(values) > 1]
    return means, stds


def _seed_order(seed: str) -> tuple[float, str]:
    return (int(seed), "") if seed.isdigit() else (math.inf, seed)
