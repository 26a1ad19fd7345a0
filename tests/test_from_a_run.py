"""A previous run's weights, end to end and offline: a LeNet trained on digits, then
`model.weights=runs:/<that run>` evaluated (python -m runner.evaluate) and fine-tuned into a new
5-class head on synthetic data, with rows frozen and thawed; and what the records say."""

import keras
import mlflow
import numpy as np
import pytest

from apps import run_app
from helpers import new_store

DIGITS = ("trainer.epochs=1", "trainer.batch_size=64")
# Synthetic images at LeNet's 32x32x1, five classes; the first three rows frozen for one epoch.
FINETUNE = ("data=synthetic", "data.num_classes=5", "data.train_size=64", "data.val_size=32",
            "trainer.batch_size=32", "trainer.epochs=2")


def run(tmp_path, name, *overrides):
    store = new_store(tmp_path)
    result = run_app("runner", f"hydra.run.dir={tmp_path}/{name}", *overrides, env={"MLFLOW_TRACKING_URI": store})
    return result, mlflow.MlflowClient(store)


def latest_run(client):
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              order_by=["attributes.start_time DESC"])
    return runs[0]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("finetune")
    result, client = run(tmp_path, "digits", *DIGITS)
    assert result.returncode == 0, result.stderr[-2000:]
    return tmp_path, client, latest_run(client)


@pytest.mark.slow
def test_a_run_fine_tunes_into_a_new_head_and_records_what_it_loaded(digits_run):
    tmp_path, client, source = digits_run
    result, client = run(tmp_path, "finetune", *FINETUNE, f"model.weights=runs:/{source.info.run_id}",
                         "model.freeze=s4", "trainer.unfreeze_epoch=2")
    assert result.returncode == 0, result.stderr[-3000:]
    tuned = latest_run(client)
    assert tuned.info.run_id != source.info.run_id and tuned.info.status == "FINISHED"
    params = tuned.data.params
    assert params["weights.source"] == f"runs:/{source.info.run_id}"
    # The digits run's preprocessing, which its params recorded; the synthetic data's own mean and std win.
    assert params["preprocessing.mean"] == "[0.5]" and params["preprocessing.std"] == "[0.25]"
    record = client.download_artifacts(tuned.info.run_id, "weights.txt", str(tmp_path))
    text = open(record).read()
    assert f"run {source.info.run_id}" in text
    fresh = text.split("fresh (initialised here, not loaded): ")[1].split("left out")[0]
    assert fresh.split() == ["2", "output/kernel", "(84,", "5)", "output/bias", "(5,)"]  # only the classifier
    # Frozen up to s4 in epoch 1, thawed in epoch 2: c1 trained too.
    before = keras.saving.load_model(tmp_path / "digits" / "model.keras", compile=False).get_layer("c1_conv")
    after = keras.saving.load_model(tmp_path / "finetune" / "model.keras", compile=False).get_layer("c1_conv")
    assert not np.array_equal(before.get_weights()[0], after.get_weights()[0])


@pytest.mark.slow
def test_the_loaded_weights_are_the_source_runs_and_frozen_rows_stay_fixed(digits_run):
    tmp_path, client, source = digits_run
    source_model = keras.saving.load_model(tmp_path / "digits" / "model.keras", compile=False)
    result, client = run(tmp_path, "frozen", *FINETUNE, "trainer.epochs=1",
                         f"model.weights=runs:/{source.info.run_id}", "model.freeze=s4")
    assert result.returncode == 0, result.stderr[-3000:]
    tuned = keras.saving.load_model(tmp_path / "frozen" / "model.keras", compile=False)
    frozen, trained = "c1_conv", "f6"
    np.testing.assert_array_equal(tuned.get_layer(frozen).get_weights()[0], source_model.get_layer(frozen).get_weights()[0])
    assert not np.array_equal(tuned.get_layer(trained).get_weights()[0], source_model.get_layer(trained).get_weights()[0])
    assert tuned.get_layer("output").get_weights()[0].shape[-1] == 5


def test_weights_from_a_run_that_is_not_in_the_store_is_one_line(tmp_path):
    result, _ = run(tmp_path, "missing", *FINETUNE, "model.weights=runs:/0123456789abcdef")
    assert result.returncode == 2
    assert result.stderr.startswith("error: model.weights=0123456789abcdef: no such run in ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unknown_freeze_row_names_the_rows(tmp_path):
    result, _ = run(tmp_path, "badrow", *FINETUNE, "model.freeze=conv9")
    assert result.returncode == 2
    assert "model.freeze=conv9: no such row; rows: c1, s2, c3, s4, flatten, c5, f6, output" in result.stderr


def test_unfreeze_epoch_without_freeze_is_refused(tmp_path):
    result, _ = run(tmp_path, "thaw", *FINETUNE, "trainer.unfreeze_epoch=2")
    assert result.returncode == 2
    assert "trainer.unfreeze_epoch=2: expected model.freeze=<row>" in result.stderr


@pytest.mark.slow
def test_a_trained_run_evaluates_to_the_figures_it_ended_with(digits_run):
    tmp_path, _, trained = digits_run
    store = new_store(tmp_path)
    result = run_app("runner.evaluate", f"hydra.run.dir={tmp_path}/evaluate", *DIGITS,
                     f"model.weights=runs:/{trained.info.run_id}", "eval.ten_crop=true",
                     env={"MLFLOW_TRACKING_URI": store})
    assert result.returncode == 0, result.stderr[-2000:]
    client = mlflow.MlflowClient(store)
    [evaluation] = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                      filter_string="tags.\"runner.role\" = 'evaluate'")
    assert evaluation.info.status == "FINISHED"
    metrics = evaluation.data.metrics
    # The same weights on the same validation split: the same figures.
    assert metrics["eval_top1"] == pytest.approx(trained.data.metrics["eval_top1"], abs=1e-6)
    assert {"eval_top5", "eval_top1_10crop", "eval_top5_10crop"} <= set(metrics)
    assert evaluation.data.params["weights.source"] == f"runs:/{trained.info.run_id}"
    artifacts = {artifact.path for artifact in client.list_artifacts(evaluation.info.run_id)}
    assert {"confusion_matrix.png", "weights.txt", "config.yaml"} <= artifacts
    assert "eval_top1" in result.stdout
