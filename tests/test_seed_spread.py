"""trainer.seed as the one source of randomness, and comparisons across seeds: runs that differ only in
the seed share a row of mean ± sample std (n) in the table, the CSV and the figure."""

import csv
import dataclasses
import io
import types

import keras
import matplotlib.image
import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer

from apps import run_app
from helpers import REPO, compose
from runner.compare.comparison import compare_sweep
from runner.compare.groups import by_recipe, not_recipe, pooled, standing
from runner.compare.plots import figure
from runner.compare.sweep_rows import Row, Spread
from runner.compare.table import csv_text, markdown, terminal_table
from runner.session.parts import prepare
from sweeps import run_sweep, store, sweep_runs

TOP1 = [0.91, 0.95, 0.96]  # three seeds of one recipe
LR = "optimizer.lr"


def row(run_id, top1, status="FINISHED", curve=None, **swept):
    return Row(label=run_id, model="lenet", status=status, run_id=run_id, parameters=61706, gmacs=0.0004,
               top1=top1, top5=None if top1 is None else min(1.0, top1 + 0.03), top1_10crop=None,
               top1_multiscale=None, published_top1=None, epochs=len(curve or [top1]), images_per_second=100.0,
               wall_seconds=10.0, objective=top1, val_top1_curve=curve or [(0, top1)], top1_curve=[], swept=swept)


def child(run_id, **params):
    return types.SimpleNamespace(info=types.SimpleNamespace(run_id=run_id),
                                 data=types.SimpleNamespace(params={key: str(value) for key, value in params.items()}))


def parent():
    return types.SimpleNamespace(info=types.SimpleNamespace(run_id="p" * 32, run_name="sweep-seeds"),
                                 data=types.SimpleNamespace(tags={}, params={}))


# grouping and aggregation


def test_a_pooled_row_holds_the_mean_and_the_sample_std_over_its_seeds():
    curves = [[(0, 0.5), (1, top1)] for top1 in TOP1]
    members = [row(f"run{seed}", top1, curve=curve, **{"trainer.seed": str(seed), LR: "0.1"})
               for seed, (top1, curve) in enumerate(zip(TOP1, curves))]
    seeds = {f"run{seed}": str(seed) for seed in range(3)}
    result = pooled(members[::-1], seeds)
    assert result.n == 3 and result.run_ids == ("run0", "run1", "run2")  # in seed order
    assert result.top1 == pytest.approx(np.mean(TOP1))
    assert result.spread["top1"] == Spread(pytest.approx(np.std(TOP1, ddof=1)), 3)
    assert result.spread["top5"].std == pytest.approx(np.std([0.94, 0.98, 0.99], ddof=1))
    assert result.spread["top1_10crop"] == Spread(None, 0)
    assert (result.parameters, result.epochs, result.images_per_second) == (61706, 2, 100.0)
    assert result.val_top1_curve == [(0, pytest.approx(0.5)), (1, pytest.approx(np.mean(TOP1)))]
    assert result.val_top1_std == [(0, pytest.approx(0.0)), (1, pytest.approx(np.std(TOP1, ddof=1)))]
    assert (result.label, result.swept) == ("optimizer.lr=0.1", {LR: "0.1"})  # the seed sets no row apart


def test_runs_share_a_row_only_when_they_differ_in_nothing_but_the_seed():
    recipe = {"trainer.batch_size": 64, "model.name": "lenet"}
    children = [child("a0", **recipe, **{"trainer.seed": 0, LR: 0.1, "tracking.run_name": "x"}),
                child("a1", **recipe, **{"trainer.seed": 1, LR: 0.1, "tracking.run_name": "y"}),
                child("a2", **recipe, **{"trainer.seed": 2, LR: 0.1, "trainer.resume": False}),
                child("b1", **recipe, **{"trainer.seed": 1, LR: 0.05}),  # seed AND lr: a recipe of its own
                child("c0", **{**recipe, "trainer.seed": 0, LR: 0.1, "trainer.batch_size": 32}),
                child("failed", **recipe, **{"trainer.seed": 3, LR: 0.1}),
                child("unrecorded")]  # no params: nothing says which recipe it ran
    rows = [row("a0", 0.9), row("a1", 0.8), row("a2", 0.7), row("b1", 0.99), row("c0", 0.5),
            row("failed", None, status="FAILED"), row("unrecorded", 0.6)]
    grouped = by_recipe(rows, children, "maximize")
    assert [(result.run_ids or (result.run_id,)) for result in grouped] == [
        ("b1",), ("a0", "a1", "a2"), ("unrecorded",), ("c0",), ("failed",)]  # best mean first, unscored last
    assert grouped[1].top1 == pytest.approx(0.8) and grouped[1].label == "trainer.seed=0,1,2"


def test_the_rule_of_keys_that_never_tell_recipes_apart():
    assert all(not_recipe(key) for key in ("trainer.seed", "trainer.resume", "trainer.resume_run",
                                           "tracking.run_name", "tracking.uri", "sweep.objective"))
    assert not any(not_recipe(key) for key in ("optimizer.lr", "trainer.batch_size", "model.name", "data.root",
                                               "augment.name", "trainer.epochs", "replicas"))


def test_a_row_is_not_distinguishable_from_the_best_when_the_mean_std_intervals_overlap():
    def spread_row(run_id, mean, std):
        return dataclasses.replace(row(run_id, mean), run_ids=(run_id, run_id + "'"),
                                   spread={"objective": Spread(std, 3)})

    rows = [spread_row("best", 0.95, 0.01), spread_row("near", 0.925, 0.02), spread_row("far", 0.90, 0.01),
            row("lone", 0.945), row("failed", None, status="FAILED")]
    assert standing(rows) == ["best", "not distinguishable", "worse", "not distinguishable", ""]


def _two_recipes():
    members = {lr: [row(f"{lr}-{seed}", top1 - offset, **{LR: lr}) for seed, top1 in enumerate(TOP1)]
               for lr, offset in (("0.1", 0.0), ("0.05", 0.2))}
    seeds = {f"{lr}-{seed}": str(seed) for lr in members for seed in range(3)}
    return [pooled(runs, seeds) for runs in members.values()]


def test_the_table_and_csv_show_mean_std_and_n():
    rows = _two_recipes()
    mean, std = np.mean(TOP1) * 100, np.std(TOP1, ddof=1) * 100
    table = terminal_table(parent(), rows)
    assert f"{mean:.2f} ± {std:.2f}% (n=3)" in table and f"{mean - 20:.2f} ± {std:.2f}% (n=3)" in table
    assert "6 runs in 2 rows" in table.splitlines()[0] and "worse" in table
    assert "Single-seed" not in table
    records = list(csv.DictReader(io.StringIO(csv_text(rows))))
    assert [float(record["top-1 mean"]) for record in records] == pytest.approx([mean / 100, mean / 100 - 0.2])
    assert [float(record["top-1 std"]) for record in records] == pytest.approx([std / 100] * 2)
    assert [record["top-1 n"] for record in records] == ["3", "3"]
    assert records[0]["run id"] == "0.1-0 0.1-1 0.1-2" and records[0]["vs best"] == "best"


def test_a_single_seed_comparison_says_so_in_one_line():
    rows = [row("a", 0.9), row("b", 0.8)]
    for text in (terminal_table(parent(), rows), markdown(parent(), rows, "comparison.png")):
        notes = [line for line in text.splitlines() if line.startswith("Single-seed comparison")]
        assert len(notes) == 1 and "cannot be told apart" in notes[0]
        assert "% (n=" not in text and "vs best" not in text
    evaluations = [dataclasses.replace(each, trained=False) for each in rows]  # given weights: no seed to vary
    assert "Single-seed" not in terminal_table(parent(), evaluations)


def test_the_figure_draws_error_bars_and_a_band():
    rows = _two_recipes()
    by_lr, curves = figure(rows, "eval_top1").axes
    bars = [container for container in by_lr.containers if isinstance(container, ErrorbarContainer)]
    assert len(bars) == 2
    heights = [np.ptp(segment[:, 1]) for bar in bars for segment in bar.lines[2][0].get_segments()]
    assert heights == pytest.approx([2 * np.std(TOP1, ddof=1)] * 2)  # ± one std
    assert "(mean of 3)" in curves.get_legend_handles_labels()[1][0]


# one source of randomness


def _first_steps(seed: int):
    session = prepare(compose(f"trainer.seed={seed}", "trainer.batch_size=8", "trainer.jit_compile=false"))
    images, _ = next(iter(session.splits.train))
    weights = [variable.numpy().copy() for variable in session.model.weights]
    keras.backend.clear_session()
    return images.numpy(), weights


@pytest.mark.e2e
def test_trainer_seed_decides_the_initial_weights_and_the_batches():
    (images, weights), (again, same), (other, different) = (_first_steps(seed) for seed in (0, 0, 1))
    assert np.array_equal(images, again) and all(map(np.array_equal, weights, same))
    assert not np.array_equal(images, other)
    assert not any(np.array_equal(a, b) for a, b in zip(weights, different) if a.std() > 0)  # biases start at 0


# end to end


@pytest.mark.e2e
def test_a_sweep_over_three_seeds_and_two_rates_compares_two_rows_of_three(tmp_path):
    result = run_sweep(tmp_path, "trainer.seed=0,1,2", f"{LR}=0.05,0.2", "trainer.epochs=1",
                       "trainer.steps_per_epoch=1", "trainer.batch_size=16", "trainer.jit_compile=false")
    assert result.returncode == 0, result.stderr[-3000:]
    client, sweep, children = sweep_runs(tmp_path)
    compare = run_app("runner.compare", f"hydra.run.dir={tmp_path}/compare", cwd=REPO,
                      env={"MLFLOW_TRACKING_URI": store(tmp_path)})
    assert compare.returncode == 0, compare.stderr[-3000:]
    records = list(csv.DictReader(io.StringIO((tmp_path / "compare" / "comparison.csv").read_text())))
    assert sorted(record["run"] for record in records) == [f"{LR}=0.05", f"{LR}=0.2"]
    for record in records:
        top1 = [run.data.metrics["eval_top1"] for run in children if f"{LR}={run.data.params[LR]}" == record["run"]]
        assert len(top1) == 3 and record["top-1 n"] == "3"
        assert float(record["top-1 mean"]) == pytest.approx(np.mean(top1))
        assert float(record["top-1 std"]) == pytest.approx(np.std(top1, ddof=1))
        cell = f"{np.mean(top1) * 100:.2f} ± {np.std(top1, ddof=1) * 100:.2f}% (n=3)"
        assert cell in compare.stdout and cell in (tmp_path / "compare" / "comparison.md").read_text()
    rows = compare_sweep(client, sweep.info.run_id, tmp_path).rows
    bars = [item for item in figure(rows, "eval_top1").axes[0].containers if isinstance(item, ErrorbarContainer)]
    assert len(rows) == 2 and len(bars) == 2
    assert matplotlib.image.imread(tmp_path / "compare" / "comparison.png").std() > 0.05
