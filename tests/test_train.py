"""`python -m runner`: real training runs, read back from a real MLflow store. The README's main
job runs as the command itself; the others run the same app in this process (tests/apps.py)."""

import csv
import os
import pathlib
import subprocess
import sys

import mlflow
import pytest

from apps import run_app
from helpers import REPO, compose, new_store
from image_folders import CLASS_COLOURS, IMAGENETTE_WNIDS, dirty_files, make_image_folder
from runner.session.strategy import cpu_has_bfloat16

EPOCH_METRICS = {"loss", "top1", "top5", "val_loss", "val_top1", "val_top5", "lr", "epoch_seconds",
                 "images_per_second"}
ARTIFACTS = {"config.yaml", "architecture.md", "architecture.png", "curves.png", "confusion_matrix.png"}


def run_runner(tmp_path, *overrides):
    """`python -m runner` in this process, recording in tmp_path's store."""
    return run_app("runner", f"hydra.run.dir={tmp_path}/run", *overrides,
                   env={"MLFLOW_TRACKING_URI": new_store(tmp_path)})


def only_run(tmp_path):
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1
    return client, runs[0]


@pytest.mark.e2e
def test_default_command_trains_lenet_on_digits_to_97_percent(tmp_path):
    """The README's main job, as the command it is: a new interpreter, nothing but the defaults."""
    environment = {**os.environ, "MLFLOW_TRACKING_URI": new_store(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "runner", f"hydra.run.dir={tmp_path}/run"],
                            cwd=REPO, env=environment, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    client, run = only_run(tmp_path)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["eval_top1"] >= 0.97
    assert EPOCH_METRICS | {"eval_top1", "eval_top5"} <= set(run.data.metrics)
    epochs = compose().trainer.epochs
    assert len(client.get_metric_history(run.info.run_id, "val_top1")) == epochs
    assert run.data.params["optimizer.lr"] == str(compose().optimizer.lr)
    assert run.data.params["replicas"] == "1"
    # What `auto` chose on this CPU (docs/performance.md): no XLA; bfloat16 where the CPU has it.
    expected = "mixed_bfloat16" if cpu_has_bfloat16() else "float32"
    resolved = [run.data.params[f"resolved.{key}"] for key in ("precision", "jit_compile", "steps_per_execution")]
    assert resolved == [expected, "False", "1"]
    assert run.data.tags["model"] == "lenet" and run.data.tags["data"] == "digits"
    assert "mlflow.parentRunId" not in run.data.tags, "a single run has no parent"
    assert ARTIFACTS <= {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert (tmp_path / "run" / "model.keras").exists()
    assert (tmp_path / "run" / "checkpoints" / "best.weights.h5").exists()
    assert run.info.run_id in result.stdout and "mlflow ui --backend-store-uri" in result.stdout
    artifacts = client.get_run(run.info.run_id).info.artifact_uri.removeprefix("file://")
    assert f"figures and artifacts: {artifacts}\n" in result.stdout
    # The table's title says the head is digits' ten classes, as describe's does.
    assert "head sized for 10 classes (data=digits;" in (pathlib.Path(artifacts) / "architecture.md").read_text()


@pytest.mark.e2e
def test_resnet18_on_a_dirty_imagenette_folder_with_ten_crop_evaluation(tmp_path):
    root = make_image_folder(tmp_path / "imagenette", per_class=4, size=(80, 96))
    readable, broken = dirty_files(CLASS_COLOURS[0], shape=(80, 96))
    for name, data in {**readable, **broken}.items():
        (root / "train" / IMAGENETTE_WNIDS[0] / name).write_bytes(data)
    result = run_runner(tmp_path, "model=resnet18", "data=imagenette", f"data.root={root}",
                        "model.input_shape=[64,64,3]", "eval.ten_crop=true", "trainer.epochs=2",
                        "trainer.batch_size=8", "trainer.jit_compile=false")  # XLA: the LeNet test
    assert result.returncode == 0, result.stderr[-3000:]
    client, run = only_run(tmp_path)
    assert run.info.status == "FINISHED"
    assert {"eval_top1", "eval_top5", "eval_top1_10crop", "eval_top5_10crop"} <= set(run.data.metrics)
    assert run.data.params["augment.name"] == "crop_flip"
    # Every unreadable file is skipped once, before training: warned about, listed and counted.
    assert run.data.metrics["data_skipped_files"] == len(broken)
    assert f"skipping {len(broken)} unreadable image files" in result.stdout  # Hydra logs to stdout
    listing = client.download_artifacts(run.info.run_id, "skipped_files.txt", str(tmp_path))
    with open(listing) as table:  # a TSV with a header row
        rows = list(csv.DictReader(table, delimiter="\t"))
    assert sorted(row["file"].rsplit("/", 1)[-1] for row in rows) == sorted(broken)


@pytest.mark.e2e
def test_googlenet_with_auxiliary_heads_on_two_mirrored_cpu_replicas(tmp_path):
    result = run_runner(tmp_path, "model=googlenet", "data=synthetic", "model.input_shape=[96,96,3]",
                        "trainer.strategy=mirrored", "trainer.cpu_replicas=2", "trainer.epochs=1",
                        "trainer.batch_size=16", "trainer.steps_per_epoch=2", "data.train_size=32",
                        "data.val_size=16")
    assert result.returncode == 0, result.stderr[-3000:]
    _, run = only_run(tmp_path)
    assert run.info.status == "FINISHED"
    assert run.data.params["replicas"] == "2" and run.data.params["model.aux_loss_weight"] == "0.3"


@pytest.mark.e2e
def test_bad_data_root_is_one_line_and_leaves_no_run(tmp_path):
    result = run_runner(tmp_path, "data=folder", f"data.root={tmp_path}/missing", "data.num_classes=3")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: data.root")
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert all(run.info.status != "RUNNING" for run in client.search_runs(experiments))


@pytest.mark.e2e
def test_train_and_evaluate_return_what_their_runs_recorded(tmp_path):
    """train() and evaluate_weights() hand their caller the run's metrics and model, as the store holds them."""
    from runner.evaluate.weights_evaluation import evaluate_weights
    from runner.training.train import train

    overrides = ["model=lenet", "data=synthetic", "data.train_size=32", "data.val_size=16", "trainer.batch_size=8",
                 "trainer.jit_compile=false", "trainer.precision=float32", f"tracking.uri={new_store(tmp_path)}"]
    cfg = compose(*overrides, "trainer.epochs=2", "tracking.log_model=true")  # runs:/ finds it in the store
    result = train(cfg, tmp_path / "run")
    evaluated = evaluate_weights(compose(*overrides, f"model.weights=runs:/{result.run_id}"))
    assert evaluated.run_id != result.run_id and evaluated.objective == evaluated.metrics["eval_top1"]
    assert evaluated.metrics["eval_top1"] == pytest.approx(result.metrics["eval_top1"])  # the same images
    client = mlflow.MlflowClient(cfg.tracking.uri)
    assert client.get_run(evaluated.run_id).data.metrics == pytest.approx(evaluated.metrics)
    run = client.get_run(result.run_id)
    assert result.run_id == run.info.run_id
    assert result.metrics == pytest.approx({key: run.data.metrics[key] for key in result.metrics})
    assert {"eval_top1", "val_top1", "loss", "lr"} <= set(result.metrics)
    assert result.objective == result.metrics[cfg.sweep.objective.value]
    assert len(result.history["val_top1"]) == 2 and result.model_file.exists()
    assert result.model.output_shape == (None, cfg.data.num_classes)
