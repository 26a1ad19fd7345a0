"""Mixup and CutMix on real pixels (scikit-learn's digits), against the papers' definitions; and a
training step with them under the default strategy and a 2-replica MirroredStrategy."""

import math

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats
from sklearn.datasets import load_digits

from helpers import compose
from runner.mistakes.errors import UserError
from runner.session.parts import prepare
from runner.training import loop, mixing

BATCH = 16


@pytest.fixture(scope="module")
def digits():
    """BATCH real digit images, float [B, 8, 8, 1] in 0-255, and one-hot targets of BATCH distinct
    classes: a mixed target then names both of an image's sources and their shares."""
    images = load_digits().images[:BATCH].astype(np.float32)[..., None] * (255 / 16)
    return tf.constant(images), tf.eye(BATCH)


def mixer(mixup=0.0, cutmix=0.0, probability=1.0, switch=0.5):
    return mixing.Mixing(mixup, cutmix, probability, switch, seed=7)


def sources(targets):
    """Per image: (its own share, its partner's index) read from the mixed targets."""
    own = np.diag(targets)
    partner = np.where(own < 1, np.argmax(targets - np.diag(own), axis=1), np.arange(len(own)))
    return own, partner


def test_mixup_blends_each_image_with_its_partner_in_the_targets_proportion(digits):
    images, targets = digits
    mixed, mixed_targets = mixer(mixup=0.4)(images, targets, step=3)
    own, partner = sources(mixed_targets.numpy())
    mixed_with_another = own < 1  # an image whose partner is itself stays as it is
    assert mixed_with_another.sum() > BATCH // 2
    ratio = own[mixed_with_another]
    assert np.allclose(ratio, ratio[0]) and 0 < ratio[0] < 1  # one ratio for the batch (Zhang et al. 2018)
    assert sorted(partner) == list(range(BATCH))  # a permutation of the batch
    expected = own[:, None, None, None] * images.numpy() + (1 - own[:, None, None, None]) * images.numpy()[partner]
    np.testing.assert_allclose(mixed.numpy(), expected, atol=1e-3)


@pytest.mark.e2e
def test_mixup_ratios_follow_beta_alpha_alpha():
    alpha, batch = 0.4, 32
    images, targets = tf.zeros([batch, 4, 4, 1]), tf.eye(batch)
    mix = mixer(mixup=alpha)
    ratios = []
    for step in range(300):
        own = np.diag(mix(images, targets, step)[1].numpy())
        ratios.append(own[np.argmax(own < 1)])  # an image mixed with another one shows the batch's ratio
    assert stats.kstest(ratios, stats.beta(alpha, alpha).cdf).pvalue > 1e-3


def test_cutmix_pastes_one_box_whose_area_is_the_partners_share(digits):
    images, targets = digits
    distinct = images + tf.reshape(tf.range(BATCH, dtype=tf.float32) * 1000, [-1, 1, 1, 1])  # no pixel shared
    for step in range(5):
        mixed, mixed_targets = mixer(cutmix=1.0)(distinct, targets, step)
        own, partner = sources(mixed_targets.numpy())
        for index in range(BATCH):
            if partner[index] == index:
                continue
            pasted = np.isclose(mixed[index, ..., 0], distinct[partner[index], ..., 0])
            kept = np.isclose(mixed[index, ..., 0], distinct[index, ..., 0])
            assert np.all(pasted ^ kept)  # every pixel from one image or the other
            rows, columns = np.nonzero(pasted)
            if len(rows):  # a box: its bounding rectangle is all pasted
                assert pasted[rows.min():rows.max() + 1, columns.min():columns.max() + 1].all()
            assert math.isclose(1 - pasted.mean(), own[index], abs_tol=1e-6)  # Yun et al.'s adjusted lam


def test_no_batch_is_mixed_at_probability_zero(digits):
    images, targets = digits
    mixed, mixed_targets = mixer(mixup=1.0, cutmix=1.0, probability=0.0)(images, targets, step=0)
    np.testing.assert_array_equal(mixed.numpy(), images.numpy())
    np.testing.assert_array_equal(mixed_targets.numpy(), targets.numpy())


def test_the_same_update_count_mixes_the_same_way(digits):
    images, targets = digits
    mix = mixer(mixup=0.2, cutmix=1.0)
    first, again, later = (mix(images, targets, step)[1].numpy() for step in (5, 5, 6))
    assert np.array_equal(first, again) and not np.array_equal(first, later)


def test_a_mixing_probability_outside_0_to_1_is_one_line():
    with pytest.raises(UserError, match=r"augment.mix_prob=1.5 is a probability"):
        mixing.from_config(compose("augment.mixup=0.2", "augment.mix_prob=1.5"))


@pytest.mark.e2e
@pytest.mark.parametrize("strategy", ["default", "mirrored"])
def test_mixed_batches_train_a_step(strategy):
    cfg = compose("augment.mixup=0.2", "augment.cutmix=1.0", "trainer.epochs=1", "trainer.steps_per_epoch=2",
                  "trainer.batch_size=32", "trainer.label_smoothing=0.1", f"trainer.strategy={strategy}",
                  *(["trainer.cpu_replicas=2"] if strategy == "mirrored" else []))
    session = prepare(cfg)
    before = [weight.numpy().copy() for weight in session.model.trainable_weights]
    history = loop.fit(session, loop.EpochHooks([])).history
    assert session.strategy.num_replicas_in_sync == (2 if strategy == "mirrored" else 1)
    assert math.isfinite(history["loss"][0])
    assert all(not np.array_equal(old, new.numpy()) for old, new in zip(before, session.model.trainable_weights))
