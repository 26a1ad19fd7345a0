"""`python -m runner.compare`: finding a sweep and comparing its jobs, on a real sqlite MLflow store in tmp."""

import csv
import dataclasses
import io
import pathlib
import time
import types

import matplotlib.image
import mlflow
import pytest
from mlflow.entities import Metric, Param

from apps import Result, run_app
from runner.compare import select
from runner.compare.comparison import compare_sweep
from runner.compare.select import find_sweep
from runner.compare.sweep_rows import differing_keys, objective_of, parse_overrides
from runner.compare.table import columns_for
from runner.mistakes.errors import UserError
from runner.tracking import store as store_module

REPO = pathlib.Path(__file__).resolve().parents[1]
NOW_MS = int(time.time() * 1000)
HOUR_MS = 3_600_000


def _run(client, experiment_id, name, start_ms, tags=None, params=None, metrics=None, histories=None,
         status="FINISHED", seconds=None):
    """A run as the trainer or the sweep callback leaves it; `seconds` long, or still RUNNING."""
    run_id = client.create_run(experiment_id, start_time=start_ms, tags=tags or {}, run_name=name).info.run_id
    points = [Metric(key, value, start_ms, 0) for key, value in (metrics or {}).items()]
    points += [Metric(key, value, start_ms, step)
               for key, values in (histories or {}).items() for step, value in enumerate(values)]
    client.log_batch(run_id, metrics=points, params=[Param(k, v) for k, v in (params or {}).items()])
    if status != "RUNNING":
        client.set_terminated(run_id, status, end_time=start_ms + int((seconds or 1) * 1000))
    return run_id


def _sweep(client, experiment_id, name, start_ms, overrides, **tags):
    tags = {"runner.role": "sweep", "sweep.objective": "eval_top1", "sweep.direction": "maximize", **tags}
    return _run(client, experiment_id, name, start_ms, tags=tags, params={"sweep.overrides": overrides},
                status="RUNNING")


def _child(client, experiment_id, parent_id, name, start_ms, overrides, model, **kwargs):
    tags = {"mlflow.parentRunId": parent_id, "hydra.overrides": overrides, "model": model, "data": "digits"}
    return _run(client, experiment_id, name, start_ms, tags=tags, **kwargs)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three sweeps in three experiments, newest `depth`; and a single run that is no sweep."""
    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    ids = {name: client.create_experiment(name, artifact_location=(root / "artifacts" / name).as_uri())
           for name in ("digits", "imagenette", "empty")}
    runs = {"empty": _sweep(client, ids["empty"], "sweep-empty", NOW_MS - 9 * HOUR_MS, "model=lenet")}

    start = NOW_MS - 5 * HOUR_MS
    runs["lrn"] = _sweep(client, ids["imagenette"], "sweep-lrn", start, "trainer.seed=0,1",
                         **{"study": "lrn", "sweep.objective": "val_loss", "sweep.direction": "minimize"})
    for job, val_loss in enumerate((0.5, 0.3)):
        runs[f"lrn-{job}"] = _child(client, ids["imagenette"], runs["lrn"], f"job-{job}", start + job * 1000,
                                    "model=lenet", "lenet", metrics={"val_loss": val_loss})
    runs["lrn-running"] = _child(client, ids["imagenette"], runs["lrn"], "job-2", NOW_MS - 65_000, "model=lenet",
                                 "lenet", status="RUNNING")

    start = NOW_MS - HOUR_MS
    runs["depth"] = _sweep(client, ids["digits"], "sweep-depth", start, "model=lenet,vgg16,resnet18 optimizer.lr=0.01",
                           study="depth")
    runs["failed"] = _child(client, ids["digits"], runs["depth"], "job-2", start + 1000,
                            "model=resnet18 optimizer.lr=0.01", "resnet18", status="FAILED", seconds=7)
    runs["lenet"] = _child(client, ids["digits"], runs["depth"], "job-0", start + 2000,
                           "model=lenet optimizer.lr=0.01", "lenet", seconds=192,
                           metrics={"parameters": 61706, "gmacs": 0.000416, "eval_top1": 0.95, "eval_top5": 0.99},
                           histories={"val_top1": [0.5, 0.8, 0.9], "top1": [0.4, 0.7, 0.85],
                                      "images_per_second": [100, 1000, 1200]})
    runs["vgg16"] = _child(client, ids["digits"], runs["depth"], "job-1", start + 3000,
                           "model=vgg16 optimizer.lr=0.01", "vgg16", seconds=3725,
                           metrics={"parameters": 138357544, "gmacs": 15.47, "eval_top1": 0.97, "eval_top5": 0.995,
                                    "eval_top1_10crop": 0.975, "eval_top5_10crop": 0.998},
                           histories={"val_top1": [0.6, 0.96], "top1": [0.5, 0.99], "images_per_second": [10, 50]})
    runs["single"] = _run(client, ids["digits"], "lenet-digits", NOW_MS, tags={"model": "lenet"})
    return uri, client, runs


@pytest.fixture(scope="module")
def depth(store, tmp_path_factory):
    """The comparison of the newest sweep, through pages of two runs so paging is exercised."""
    _, client, runs = store
    page_size, store_module.PAGE_SIZE = store_module.PAGE_SIZE, 2
    try:
        return compare_sweep(client, runs["depth"], tmp_path_factory.mktemp("depth"))
    finally:
        store_module.PAGE_SIZE = page_size


def _run_ids(comparison):
    return [row.run_id for row in comparison.rows]


# finding the sweep


def test_the_latest_sweep_is_the_default(store):
    _, client, runs = store
    assert find_sweep(client).info.run_id == runs["depth"]


@pytest.mark.parametrize(("arguments", "expected"), [
    ({"run_id": "lrn"}, "lrn"),
    ({"experiment": "imagenette"}, "lrn"),
    ({"tag": "study=lrn"}, "lrn"),
    ({"experiment": "digits", "tag": "study=depth"}, "depth"),
])
def test_a_sweep_by_id_experiment_or_tag(store, arguments, expected):
    _, client, runs = store
    if "run_id" in arguments:
        arguments = {"run_id": runs[arguments["run_id"]]}
    assert find_sweep(client, **arguments).info.run_id == runs[expected]


def test_the_latest_sweep_is_found_across_pages(store, monkeypatch):
    _, client, runs = store
    monkeypatch.setattr(store_module, "PAGE_SIZE", 1)
    assert find_sweep(client, tag="study=lrn").info.run_id == runs["lrn"]


@pytest.mark.parametrize(("arguments", "message"), [
    ({"tag": "study"}, "compare.tag=study: expected key=value"),
    ({"tag": "study=nope"}, "compare.tag=study=nope: no sweep in any experiment has this tag; sweeps there have "
                            "study=depth, lrn"),
    ({"tag": "owner=me"}, "no sweep there has a tag owner"),
    ({"experiment": "nope"}, "compare.experiment=nope: no such MLflow experiment"),
    ({"experiment": "Default"}, "no sweep in experiment Default"),
    ({"run_id": "0" * 32}, f"compare.run_id={'0' * 32}: no such run"),
    ({"run_id": "single"}, "is not a sweep's parent run (tag runner.role=sweep): omit it for the latest sweep"),
    ({"run_id": "lenet"}, "it is a job of the sweep compare.run_id="),
])
def test_find_sweep_errors_are_one_line_naming_the_key(store, arguments, message):
    _, client, runs = store
    if arguments.get("run_id") in runs:
        arguments = {"run_id": runs[arguments["run_id"]]}
    with pytest.raises(UserError) as error:
        find_sweep(client, **arguments)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_the_experiment_error_lists_the_experiments(store):
    _, client, _ = store
    with pytest.raises(UserError, match="there are: Default, digits, empty, imagenette"):
        find_sweep(client, experiment="nope")


def test_a_job_points_to_its_sweep(store):
    _, client, runs = store
    with pytest.raises(UserError, match=f"compare.run_id={runs['depth']}$"):
        find_sweep(client, run_id=runs["vgg16"])


def test_a_missing_store_is_an_error_and_is_not_created(tmp_path):
    database = tmp_path / "nowhere" / "mlflow.db"
    with pytest.raises(UserError, match="no MLflow store at .*mlflow.db: .*tracking.uri"):
        select.existing_store(f"sqlite:///{database}")
    assert not database.parent.exists()


# labels


def test_overrides_parse_in_order_and_keep_spaces_inside_values():
    assert parse_overrides("optimizer.lr=0.01 model=lenet +tracking.tags.note=a b ~eval") == {
        "optimizer.lr": "0.01", "model": "lenet", "+tracking.tags.note": "a b", "~eval": ""}
    assert parse_overrides("") == {}


def test_a_parent_without_the_objective_tags_optimised_the_schemas_default():
    untagged = types.SimpleNamespace(data=types.SimpleNamespace(tags={"runner.role": "sweep"}))
    assert objective_of(untagged) == ("eval_top1", "maximize")


def test_only_keys_that_differ_label_a_run():
    jobs = [{"model": "lenet", "optimizer.lr": "0.1"}, {"model": "vgg16", "optimizer.lr": "0.1"},
            {"optimizer.lr": "0.1", "trainer.epochs": "2"}]
    assert differing_keys(jobs) == ["model", "trainer.epochs"]
    assert differing_keys([{"model": "lenet"}, {"model": "lenet"}]) == []


# the comparison


def test_rows_are_best_first_and_unscored_runs_last(store, depth):
    _, _, runs = store
    assert _run_ids(depth) == [runs["vgg16"], runs["lenet"], runs["failed"]]
    assert [row.label for row in depth.rows] == ["model=vgg16", "model=lenet", "model=resnet18"]
    assert [row.status for row in depth.rows] == ["FINISHED", "FINISHED", "FAILED"]


def test_rows_hold_the_metrics_epochs_throughput_and_wall_time(depth):
    vgg16, lenet, failed = depth.rows
    assert (vgg16.parameters, vgg16.gmacs, vgg16.top1, vgg16.top1_10crop) == (138357544, 15.47, 0.97, 0.975)
    assert (lenet.epochs, vgg16.epochs, failed.epochs) == (3, 2, 0)
    assert lenet.images_per_second == 1100  # the median without the compiling first epoch
    assert vgg16.images_per_second == 50
    assert (lenet.wall_seconds, vgg16.wall_seconds, failed.wall_seconds) == (192, 3725, 7)
    assert lenet.val_top1_curve == [(0, 0.5), (1, 0.8), (2, 0.9)]
    assert vgg16.top1_curve == [(0, 0.5), (1, 0.99)]
    assert (failed.parameters, failed.top1, failed.images_per_second, failed.val_top1_curve) == (None, None, None, [])


def test_the_table_formats_sizes_percentages_and_durations(store, depth):
    _, _, runs = store
    lines = depth.table.splitlines()
    assert lines[0].startswith("sweep-depth (model=lenet,vgg16,resnet18 optimizer.lr=0.01), parent run ")
    header = lines[2].split()
    assert header[:6] == ["run", "model", "status", "parameters", "GMACs", "top-1"]
    assert "10-crop" in lines[2] and lines[2].rstrip().endswith("run id")
    vgg16, lenet, failed = lines[4:7]
    assert vgg16.split() == ["model=vgg16", "vgg16", "FINISHED", "138.4M", "15.47", "97.00%", "99.50%", "97.50%",
                             "2", "50", "1h", "02m", runs["vgg16"]]
    assert lenet.split() == ["model=lenet", "lenet", "FINISHED", "61.7K", "0.000416", "95.00%", "99.00%",
                             "3", "1,100", "3m", "12s", runs["lenet"]]
    assert failed.split() == ["model=resnet18", "resnet18", "FAILED", "0", "7s", runs["failed"]]


def test_markdown_has_a_title_a_github_table_and_the_figure(store, depth):
    _, _, runs = store
    text = depth.paths[0].read_text()
    assert text.startswith("## Sweep sweep-depth: `model=lenet,vgg16,resnet18 optimizer.lr=0.01`\n")
    assert f"parent run {runs['depth']}: 3 runs, best eval_top1 (maximize) first" in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 3
    assert table[2].startswith("| model=vgg16 ") and " 138.4M |" in table[2] and " 61.7K |" in table[3]
    assert "![" in text and "(comparison.png)" in text


def test_csv_holds_raw_values_and_empty_cells(store, depth):
    _, _, runs = store
    records = list(csv.DictReader(io.StringIO(depth.paths[1].read_text())))
    assert [record["run id"] for record in records] == _run_ids(depth)
    vgg16, lenet, failed = records
    assert vgg16["parameters"] == "138357544" and lenet["parameters"] == "61706"
    assert float(vgg16["top-1 mean"]) == 0.97 and float(vgg16["10-crop top-1 mean"]) == 0.975
    assert (vgg16["top-1 std"], vgg16["top-1 n"], failed["top-1 n"]) == ("", "1", "0")  # one run: no sample std
    assert float(lenet["wall seconds"]) == 192 and float(lenet["images/s"]) == 1100
    assert (failed["status"], failed["parameters"], failed["top-1 mean"], failed["epochs"]) == ("FAILED", "", "", "0")


def test_the_figure_is_a_three_panel_png(depth):
    image = matplotlib.image.imread(depth.paths[2])
    height, width = image.shape[:2]
    assert (height, width) == (605, 2090)  # 19 x 5.5 inches at 110 dpi: three panels side by side
    assert image.std() > 0.05  # drawn on, not blank


def test_the_three_files_are_logged_on_the_parent(store, depth):
    _, client, runs = store
    assert [path.name for path in depth.paths] == ["comparison.md", "comparison.csv", "comparison.png"]
    assert {artifact.path for artifact in client.list_artifacts(runs["depth"])} == {
        "comparison.md", "comparison.csv", "comparison.png"}


def test_a_minimising_objective_and_identical_overrides(store, tmp_path):
    _, client, runs = store
    comparison = compare_sweep(client, runs["lrn"], tmp_path)
    assert _run_ids(comparison) == [runs["lrn-1"], runs["lrn-0"], runs["lrn-running"]]
    assert [row.label for row in comparison.rows] == ["job-1", "job-0", "job-2"]  # no override differs
    running = comparison.rows[-1]
    assert running.status == "RUNNING" and running.wall_seconds >= 65  # counted up to now
    assert "10-crop" not in comparison.table


def test_a_sweep_without_children_still_writes_its_comparison(store, tmp_path):
    _, client, runs = store
    comparison = compare_sweep(client, runs["empty"], tmp_path)
    assert comparison.rows == [] and "0 runs" in comparison.table
    assert all(path.stat().st_size > 0 for path in comparison.paths)


# the command


def _compare(store_uri: str, run_dir: pathlib.Path, *overrides: str) -> Result:
    return run_app("runner.compare", f"hydra.run.dir={run_dir}", *overrides, cwd=REPO,
                   env={"MLFLOW_TRACKING_URI": store_uri})


def test_the_command_prints_the_table_and_writes_the_files(store, tmp_path):
    uri, _, runs = store
    result = _compare(uri, tmp_path, "compare.tag='study=depth'")  # quoted: Hydra's grammar reserves =
    assert result.returncode == 0, result.stderr
    rows = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("model=")]
    assert rows == ["model=vgg16", "model=lenet", "model=resnet18"]
    assert "138.4M" in result.stdout and "97.50%" in result.stdout
    names = ("comparison.md", "comparison.csv", "comparison.png")
    assert f"wrote {', '.join(str(tmp_path / name) for name in names)} (also on the sweep's parent run " \
           f"{runs['depth']}, sweep-depth)" in result.stdout
    assert all((tmp_path / name).is_file() for name in names)


def test_the_command_reports_a_mistake_in_one_line(store, tmp_path):
    uri, _, _ = store
    result = _compare(uri, tmp_path, "compare.experiment=nope")
    assert result.returncode == 2
    assert "error: compare.experiment=nope: no such MLflow experiment" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_published_column_shows_only_where_an_evaluation_has_the_publishers_figure(depth):
    headers = [column.header for column in columns_for(depth.rows)]
    assert "published top-1" not in headers  # training runs: no publisher
    evaluated = [dataclasses.replace(depth.rows[0], published_top1=0.6976), *depth.rows[1:]]
    headers = [column.header for column in columns_for(evaluated)]
    assert headers.index("published top-1") == headers.index("10-crop top-1") + 1
