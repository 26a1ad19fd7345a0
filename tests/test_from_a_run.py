"""A previous run's model, end to end and offline: a LeNet trained on digits, then its model.keras
used alone (raw uint8 images in, probabilities out), by python -m runner.predict on image files,
and as `model.weights=runs:/<that run>`: evaluated (python -m runner.evaluate) and fine-tuned into
a new 5-class head on synthetic data, with rows frozen and thawed; and what the records say."""

import csv
import pathlib

import keras
import mlflow
import numpy as np
import pytest
import tensorflow as tf

from apps import run_app
from helpers import compose, new_store
from image_folders import png_claiming
from runner.data.splits import load
from runner.weights import saved

DIGITS = ("trainer.epochs=1", "trainer.batch_size=64")
# Synthetic images at LeNet's 32x32x1, five classes; the first three rows frozen for one epoch.
FINETUNE = ("data=synthetic", "data.num_classes=5", "data.train_size=64", "data.val_size=32",
            "trainer.batch_size=32", "trainer.epochs=2")


def run(tmp_path, name, *overrides):
    store = new_store(tmp_path)
    result = run_app("runner", f"hydra.run.dir={tmp_path}/{name}", *overrides, env={"MLFLOW_TRACKING_URI": store})
    return result, mlflow.MlflowClient(store)


def network(run_dir):
    """The network inside a run's stand-alone model.keras."""
    return saved.network(keras.saving.load_model(run_dir / "model.keras"))


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


@pytest.mark.e2e
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
    before = network(tmp_path / "digits").get_layer("c1_conv")
    after = network(tmp_path / "finetune").get_layer("c1_conv")
    assert not np.array_equal(before.get_weights()[0], after.get_weights()[0])


def kernel(model, name):
    return model.get_layer(name).get_weights()[0]


@pytest.mark.e2e
def test_the_loaded_weights_are_the_source_runs_and_frozen_rows_stay_fixed(digits_run):
    tmp_path, client, source = digits_run
    source_model = network(tmp_path / "digits")
    result, client = run(tmp_path, "frozen", *FINETUNE, "trainer.epochs=1",
                         f"model.weights=runs:/{source.info.run_id}", "model.freeze=s4")
    assert result.returncode == 0, result.stderr[-3000:]
    tuned = network(tmp_path / "frozen")
    frozen, trained = "c1_conv", "f6"
    np.testing.assert_array_equal(kernel(tuned, frozen), kernel(source_model, frozen))
    assert not np.array_equal(kernel(tuned, trained), kernel(source_model, trained))
    assert tuned.get_layer("output").get_weights()[0].shape[-1] == 5


@pytest.mark.e2e
def test_weights_from_a_run_that_is_not_in_the_store_is_one_line(tmp_path):
    result, _ = run(tmp_path, "missing", *FINETUNE, "model.weights=runs:/0123456789abcdef")
    assert result.returncode == 2
    assert result.stderr.startswith("error: model.weights=runs:/0123456789abcdef: no such run in ")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("reference", ["runs:/", "runs:/..", "runs:/../../etc"])
def test_a_malformed_run_reference_is_one_line_before_the_store_is_asked(tmp_path, reference):
    result, _ = run(tmp_path, "malformed", *FINETUNE, f"model.weights={reference}")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: model.weights={reference}: ") and "is not an MLflow run id" in line


@pytest.mark.e2e
def test_an_unknown_freeze_row_names_the_rows(tmp_path):
    result, _ = run(tmp_path, "badrow", *FINETUNE, "model.freeze=conv9")
    assert result.returncode == 2
    assert "model.freeze=conv9: no such row; rows: c1, s2, c3, s4, flatten, c5, f6, output" in result.stderr


def test_unfreeze_epoch_without_freeze_is_refused(tmp_path):
    result, _ = run(tmp_path, "thaw", *FINETUNE, "trainer.unfreeze_epoch=2")
    assert result.returncode == 2
    assert "trainer.unfreeze_epoch=2: expected model.freeze=<row>" in result.stderr


@pytest.mark.e2e
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
    assert {"confusion_matrix.png", "mistakes.png", "per_class.csv", "weights.txt", "config.yaml"} <= artifacts
    assert "eval_top1" in result.stdout


def write_digit_pngs(folder):
    """The digits run's validation images as PNG files (every other one in a subfolder), named
    <index>_<label>.png, and one file that is not an image."""
    from runner.data import digits

    _, (images, labels) = digits.split(compose().data.val_fraction)
    (folder / "sub").mkdir(parents=True)
    for index, (image, label) in enumerate(zip(images, labels)):
        tf.io.write_file(str(folder / ("sub" if index % 2 else "") / f"{index:03d}_{label}.png"),
                         tf.io.encode_png(image))
    (folder / "bad.png").write_bytes(b"not a png")
    return len(labels)


@pytest.mark.e2e
def test_predict_on_digit_files_matches_the_runs_validation_accuracy(digits_run):
    tmp_path, _, trained = digits_run
    count = write_digit_pngs(tmp_path / "pngs")
    output = tmp_path / "predictions.csv"
    result = run_app("runner.predict", f"hydra.run.dir={tmp_path}/predict",
                     f"predict.model=runs:/{trained.info.run_id}",
                     f"predict.images={tmp_path / 'pngs'}", f"predict.output={output}",
                     env={"MLFLOW_TRACKING_URI": new_store(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"wrote {output}: {count} images; skipped 1 unreadable: {tmp_path / 'pngs' / 'bad.png'}" in result.stdout
    assert f"{count}/{count}" in result.stdout and "/image" in result.stdout  # Keras's progress bar, to the end
    rows = list(csv.DictReader(output.open()))
    assert list(rows[0]) == ["file", "rank", "class", "probability"]
    assert [row["rank"] for row in rows[:5]] == ["1", "2", "3", "4", "5"] and len(rows) == 5 * count
    top = [row for row in rows if row["rank"] == "1"]
    accuracy = np.mean([pathlib.Path(row["file"]).stem.split("_")[1] == row["class"] for row in top])
    # A PNG gray round trip may move a pixel by one level: a prediction or two may differ.
    assert accuracy == pytest.approx(trained.data.metrics["eval_top1"], abs=0.01)


@pytest.mark.e2e
def test_the_saved_model_classifies_raw_uint8_images_by_itself(digits_run):
    tmp_path, _, trained = digits_run
    model = keras.saving.load_model(tmp_path / "digits" / "model.keras")  # no custom objects, no compile
    splits = load(compose(*DIGITS))
    images, labels = zip(*splits.val.as_numpy_iterator())
    images, labels = np.concatenate(images), np.concatenate(labels)
    assert images.dtype == np.uint8  # as the pipeline reads them, before any normalisation
    probabilities = model.predict(images, verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    accuracy = np.mean(probabilities.argmax(axis=1) == labels)
    assert accuracy == pytest.approx(trained.data.metrics["eval_top1"], abs=0.005)
    assert saved.read_card(tmp_path / "digits" / "model.keras").class_names == tuple(str(digit) for digit in range(10))


@pytest.mark.e2e
def test_predict_prints_a_table_for_one_file(digits_run, tmp_path):
    model_dir, _, _ = digits_run
    write_digit_pngs(tmp_path / "pngs")
    result = run_app("runner.predict", f"hydra.run.dir={tmp_path}/predict",
                     f"predict.model={model_dir / 'digits' / 'model.keras'}",
                     f"predict.images={tmp_path / 'pngs' / '000_7.png'}", "predict.top_k=2")
    assert result.returncode == 0, result.stderr[-2000:]
    header, rule, line = result.stdout.strip().splitlines()[-3:]
    assert header.split() == ["file", "top", "classes", "(probability)"]
    assert line.startswith(str(tmp_path / "pngs" / "000_7.png")) and line.count(",") == 1


@pytest.mark.e2e
def test_predict_skips_links_that_dangle_or_loop_and_notes_them_under_the_table(digits_run, tmp_path):
    model_dir, _, _ = digits_run
    write_digit_pngs(tmp_path / "pngs")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes((tmp_path / "pngs" / "000_7.png").read_bytes())
    (photos / "dangling.png").symlink_to(photos / "nowhere.png")
    (photos / "loop.png").symlink_to(photos / "loop.png")
    (photos / "huge.png").write_bytes(png_claiming(20_000, 20_000))  # never decoded: 1.2 GB of pixels
    model = f"predict.model={model_dir / 'digits' / 'model.keras'}"
    result = run_app("runner.predict", f"hydra.run.dir={tmp_path}/predict", model, f"predict.images={photos}")
    assert result.returncode == 0, result.stderr[-2000:]
    *table, note = result.stdout.strip().splitlines()
    assert table[-1].startswith(str(photos / "a.png"))
    assert note == f"skipped 3 unreadable: {photos / 'dangling.png'}, {photos / 'huge.png'}, {photos / 'loop.png'}"
    assert "huge.png (400,000,000 pixels, more than data.max_pixels=100,000,000)" in result.stdout
    (photos / "a.png").unlink()
    result = run_app("runner.predict", f"hydra.run.dir={tmp_path}/none", model, f"predict.images={photos}")
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: predict.images={photos}: none of its 3 image files can be read "
                                     f"({photos / 'dangling.png'}: symbolic link to nothing (No such file or "
                                     "directory))")
