"""Imbalanced training sets: class weights against scikit-learn's, the weighted loss against Keras's,
balanced sampling's class frequencies, and a run on an imbalanced image folder whose per-class
table shows what training saw of each class."""

import csv
import math

import mlflow
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats
from sklearn.utils.class_weight import compute_class_weight

from apps import run_app
from helpers import compose, new_store
from image_folders import make_image_folder
from runner.data import balance
from runner.mistakes.errors import UserError
from runner.session.parts import prepare
from runner.training import loop
from runner.training.loss import Loss

# 90, 30 and 10 images of three classes, in no particular order.
LABELS = np.random.default_rng(0).permutation(np.repeat([0, 1, 2], [90, 30, 10])).astype(np.int32)


def test_balanced_weights_are_scikit_learns():
    ours = balance.class_weights("balanced", balance.class_counts(LABELS, 3))
    np.testing.assert_allclose(ours, compute_class_weight("balanced", classes=np.arange(3), y=LABELS))


def test_a_class_without_training_images_weighs_nothing():
    assert balance.class_weights("balanced", [4, 0, 2]) == (0.75, 0.0, 1.5)


@pytest.mark.parametrize("setting", ["heavy", [1.0, 2.0], [1.0, -1.0, 1.0], [0, 0, 0]])
def test_class_weights_other_than_balanced_or_one_per_class_are_one_line(setting):
    with pytest.raises(UserError, match=r"data.class_weights=.*expected balanced, or 3 weights"):
        balance.class_weights(setting, [5, 5, 5])


def test_the_weighted_loss_is_each_examples_cross_entropy_times_its_class_weight():
    weights = (0.5, 1.0, 3.0)
    logits = tf.constant([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 0.0, 4.0]])
    labels = tf.constant([0, 1, 2])
    targets = tf.one_hot(labels, 3)
    weighted = Loss(3, 0.0, None, class_weights=weights).per_example_loss(targets, logits)
    plain = tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    np.testing.assert_allclose(weighted, plain.numpy() * np.array(weights), rtol=1e-6)
    # A target mixed 0.25 / 0.75 from classes 0 and 2 weighs 0.25 * 0.5 + 0.75 * 3.0.
    mixed = tf.constant([[0.25, 0.0, 0.75]])
    loss = Loss(3, 0.0, None, class_weights=weights).per_example_loss(mixed, logits[:1])
    unweighted = Loss(3, 0.0, None).per_example_loss(mixed, logits[:1])
    np.testing.assert_allclose(loss, unweighted * (0.25 * 0.5 + 0.75 * 3.0), rtol=1e-6)


def drawn(dataset):
    return np.array([int(key) for key, _ in dataset.as_numpy_iterator()])


def test_balanced_sampling_draws_every_class_equally_often_and_each_key_with_its_label():
    keys = tf.data.Dataset.from_tensor_slices((np.arange(len(LABELS)), LABELS))
    sampled = balance.balanced_keys(keys, LABELS, seed=3)
    first = list(sampled.as_numpy_iterator())
    assert len(first) == len(LABELS)  # an epoch is as long as the split
    assert all(LABELS[key] == label for key, label in first)
    counts = np.bincount([label for _, label in first], minlength=3)
    assert stats.chisquare(counts).pvalue > 1e-3  # uniform over the classes, not 90:30:10
    minority = {key for key, label in first if label == 2}
    assert len(minority) > 5  # draws spread over the small class's images, with replacement
    first_keys = np.array([key for key, _ in first])
    assert not np.array_equal(drawn(sampled), first_keys)  # the next epoch draws anew
    assert np.array_equal(drawn(balance.balanced_keys(keys, LABELS, seed=3)), first_keys)  # repeats given the seed


def test_balanced_sampling_with_a_cache_is_one_line():
    with pytest.raises(UserError, match=r"data.sampling=balanced .* pass data.cache=false"):
        prepare(compose("data.sampling=balanced", "data.cache=true", "trainer.epochs=1"))


def test_an_unknown_sampling_is_one_line():
    with pytest.raises(UserError, match=r"data.sampling: unknown sampling 'even'; valid: shuffle, balanced"):
        prepare(compose("data.sampling=even", "trainer.epochs=1"))


@pytest.mark.e2e
@pytest.mark.parametrize("strategy", ["default", "mirrored"])
def test_class_weights_and_balanced_sampling_train_a_step(strategy):
    cfg = compose("data.class_weights=balanced", "data.sampling=balanced", "trainer.epochs=1",
                  "trainer.steps_per_epoch=2", "trainer.batch_size=32", f"trainer.strategy={strategy}",
                  *(["trainer.cpu_replicas=2"] if strategy == "mirrored" else []))
    session = prepare(cfg)
    assert len(session.training.loss.class_weights) == 10
    history = loop.fit(session, loop.EpochHooks([])).history
    assert math.isfinite(history["loss"][0])


@pytest.mark.e2e
def test_the_per_class_table_shows_what_training_saw_of_each_class(tmp_path):
    classes = ["n01440764", "n02102040", "n02979186"]
    root = make_image_folder(tmp_path / "photos", classes=classes, per_class=6, size=(40, 48))
    for extra in sorted((root / "train" / classes[2]).iterdir())[2:]:
        extra.unlink()  # 6, 6 and 2 training images
    result = run_app("runner", f"hydra.run.dir={tmp_path}/run", "data=folder", f"data.root={root}",
                     "data.num_classes=3", "model=lenet", "model.input_shape=[32,32,3]", "trainer.epochs=1",
                     "trainer.batch_size=4", "data.class_weights=balanced", "data.sampling=balanced",
                     env={"MLFLOW_TRACKING_URI": new_store(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run, = client.search_runs([e.experiment_id for e in client.search_experiments()])
    table = list(csv.DictReader(open(client.download_artifacts(run.info.run_id, "per_class.csv", str(tmp_path)))))
    assert [row["train_images"] for row in table] == ["6", "6", "2"]
    # Balanced sampling draws each class a third of the time; balanced weights then scale the rare
    # class up again (weight 14 / (3 * 2) against 14 / (3 * 6)): its share of the loss is 3/5.
    shares = [float(row["train_loss_share"]) for row in table]
    assert shares == pytest.approx([0.2, 0.2, 0.6], abs=1e-4)
    assert run.data.params["data.sampling"] == "balanced" and run.data.params["data.class_weights"] == "balanced"
