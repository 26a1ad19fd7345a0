"""One row per child run of a sweep: what it is, how it ended, its metrics and curves, best first.

groups.py pools the rows of runs that differ only in trainer.seed into one row of means, with each
metric's sample standard deviation in `spread`.
"""

import dataclasses
import math
import re
import statistics
import time
from typing import Optional

import mlflow
from mlflow.entities import Run

from runner.config.schema import Direction, SweepConfig
from runner.tracking.labels import EVALUATE_ROLE, ROLE_TAG

# A parent run recorded before the sweep.* tags existed optimised the schema's default objective.
DEFAULT_SWEEP = SweepConfig()
# `hydra.overrides` joins the job's overrides with spaces, so a value may hold one; split only where
# the next `key=` (keys may start with + or ~ and hold dots, slashes and @) or a bare `~key` begins.
OVERRIDE_START = re.compile(r"\s+(?=[+~]{0,2}[\w./@-]+=|~[\w./@-]+(?:\s|$))")


@dataclasses.dataclass(frozen=True)
class Spread:
    """A metric over a row's runs: the row's field holds the mean, this its sample standard deviation
    (n - 1 in the denominator; None when n < 2) and n, the runs that have the metric."""
    std: Optional[float]
    n: int


@dataclasses.dataclass
class Row:
    label: str  # the overrides that set this run apart from its siblings
    model: str
    status: str
    run_id: str
    parameters: Optional[int]
    gmacs: Optional[float]
    top1: Optional[float]
    top5: Optional[float]
    top1_10crop: Optional[float]
    top1_multiscale: Optional[float]  # eval.scales' softmax averaged over the scales
    published_top1: Optional[float]  # runner.evaluate's: what the weights' publisher reports
    epochs: float  # a count for one run; the mean for a row of several (early stopping may differ)
    images_per_second: Optional[float]
    wall_seconds: Optional[float]
    objective: Optional[float]  # the sweep's objective metric, the sort key
    val_top1_curve: list[tuple[int, float]]  # (epoch from 0, value)
    top1_curve: list[tuple[int, float]]
    swept: dict[str, str] = dataclasses.field(default_factory=dict)  # this run's values of the keys the sweep varies
    run_ids: tuple[str, ...] = ()  # a row of several runs: each run's id, in seed order; run_id is the first
    spread: dict[str, Spread] = dataclasses.field(default_factory=dict)  # by field name (top1, ...): several runs
    val_top1_std: list[tuple[int, float]] = dataclasses.field(default_factory=list)  # per epoch, over the runs
    trained: bool = True  # False: an evaluation of given weights, which no seed changes

    @property
    def n(self) -> int:
        """How many runs the row pools: its seeds."""
        return len(self.run_ids) or 1


def sweep_rows(client: mlflow.MlflowClient, parent: Run, children: list[Run]) -> list[Row]:
    """The children's rows sorted by the sweep's objective in its direction, runs without it last."""
    objective, direction = objective_of(parent)
    overrides = [parse_overrides(child.data.tags.get("hydra.overrides", "")) for child in children]
    keys = differing_keys(overrides)
    rows = [dataclasses.replace(_row(client, child, _label(child, job_overrides, keys), objective),
                                swept={key: job_overrides[key] for key in keys if key in job_overrides})
            for child, job_overrides in zip(children, overrides)]
    return sorted_best_first(rows, direction)


def objective_of(parent: Run) -> tuple[str, str]:
    """The metric the sweep optimised and `maximize` or `minimize`, as its parent run records them."""
    tags = parent.data.tags
    return (tags.get("sweep.objective", DEFAULT_SWEEP.objective.value),
            tags.get("sweep.direction", DEFAULT_SWEEP.direction.value))


def sorted_best_first(rows: list[Row], direction: str) -> list[Row]:
    """Stable: equal scores (and the unscored, last) keep their start order."""
    sign = 1 if Direction(direction) is Direction.minimize else -1

    def key(row: Row) -> tuple[bool, float]:
        scored = row.objective is not None and not math.isnan(row.objective)  # a diverged run logs NaN
        return (not scored, sign * row.objective if scored else 0.0)

    return sorted(rows, key=key)


def parse_overrides(text: str) -> dict[str, str]:
    """`optimizer.lr=0.01 model=lenet` as {key: value}, in order; `~key` (a deletion) has no value."""
    pairs = (item.partition("=") for item in OVERRIDE_START.split(text.strip()) if item)
    return {key: value for key, _, value in pairs}


def differing_keys(overrides: list[dict[str, str]]) -> list[str]:
    """Keys whose value is not the same in every job (missing counts as a value), in first-seen order."""
    keys = list(dict.fromkeys(key for job in overrides for key in job))
    return [key for key in keys if len({job.get(key) for job in overrides}) > 1]


def _label(child: Run, overrides: dict[str, str], keys: list[str]) -> str:
    return label_of({key: overrides[key] for key in keys if key in overrides}) or child.info.run_name


def label_of(swept: dict[str, str]) -> str:
    return " ".join(f"{key}={_short(value)}" for key, value in swept.items())


def _short(value: str) -> str:
    """Optuna's samples print with 17 digits; four tell the trials apart."""
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.4g}" if "." in value and len(value) > 6 else value


def _row(client: mlflow.MlflowClient, child: Run, label: str, objective: str) -> Row:
    metrics = child.data.metrics
    val_top1, top1 = _history(client, child, "val_top1"), _history(client, child, "top1")
    return Row(
        label=label,
        model=child.data.tags.get("model", ""),
        status=child.info.status,
        run_id=child.info.run_id,
        parameters=round(metrics["parameters"]) if "parameters" in metrics else None,
        gmacs=metrics.get("gmacs"),
        top1=metrics.get("eval_top1"),
        top5=metrics.get("eval_top5"),
        top1_10crop=metrics.get("eval_top1_10crop"),
        top1_multiscale=metrics.get("eval_top1_multiscale"),
        published_top1=metrics.get("published_top1"),
        epochs=len(val_top1),
        images_per_second=_steady_throughput([value for _, value in _history(client, child, "images_per_second")]),
        wall_seconds=_wall_seconds(child),
        objective=metrics.get(objective),
        val_top1_curve=val_top1,
        top1_curve=top1,
        trained=child.data.tags.get(ROLE_TAG) != EVALUATE_ROLE,  # an evaluation: trained by no seed
    )


def _history(client: mlflow.MlflowClient, child: Run, metric: str) -> list[tuple[int, float]]:
    if metric not in child.data.metrics:
        return []  # spares a query per missing metric: failed runs often have none
    return sorted((point.step, point.value) for point in client.get_metric_history(child.info.run_id, metric))


def _steady_throughput(per_epoch: list[float]) -> Optional[float]:
    """The median images/s; the first epoch's includes compiling the step, so it counts only alone."""
    if not per_epoch:
        return None
    return statistics.median(per_epoch[1:] if len(per_epoch) > 1 else per_epoch)


def _wall_seconds(child: Run) -> Optional[float]:
    """End minus start; a run still going (or killed without an end) counts until now."""
    if child.info.start_time is None:
        return None
    end = child.info.end_time or time.time() * 1000
    return (end - child.info.start_time) / 1000
