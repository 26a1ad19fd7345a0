"""The epoch loop's options on a small real model: precision, steps per execution, schedules, stopping."""

import dataclasses
import math

import keras
import pytest
import tensorflow as tf

from helpers import compose
from runner.session import strategy
from runner.session.parts import prepare
from runner.session.strategy import precision, uses_xla
from runner.training import loop
from runner.training.callbacks import standard_callbacks

SMALL = ("data=synthetic", "data.train_size=64", "data.val_size=32", "trainer.batch_size=16")


def fit(tmp_path, *overrides):
    cfg = compose(*SMALL, *overrides)
    try:
        session = prepare(cfg)
        trained = loop.fit(session, loop.EpochHooks(standard_callbacks(cfg, tmp_path)))
    finally:
        keras.config.set_dtype_policy("float32")
    return session.model, session.training.optimizer, trained.history


@pytest.mark.e2e
@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_with_float32_losses(tmp_path, precision):
    model, optimizer, history = fit(tmp_path, f"trainer.precision={precision}", "trainer.epochs=2",
                                    "trainer.jit_compile=false")
    assert model.layers[1].compute_dtype == precision.removeprefix("mixed_")
    assert all(math.isfinite(value) for value in history["loss"])
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer) == (precision == "mixed_float16")


@pytest.mark.parametrize("capability, bfloat16_cpu, expected", [
    (None, False, "float32"), (None, True, "mixed_bfloat16"), ((6, 1), True, "float32"),
    ((7, 5), True, "mixed_float16"), ((8, 0), False, "mixed_bfloat16"), ((9, 0), False, "mixed_bfloat16")])
def test_auto_precision_follows_the_device(monkeypatch, capability, bfloat16_cpu, expected):
    # The device queries stand in for devices this machine lacks; the choice made from them is real.
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [] if capability is None else ["GPU:0"])
    monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda device: {"compute_capability": capability})
    monkeypatch.setattr(strategy, "cpu_has_bfloat16", lambda: bfloat16_cpu)
    assert precision(compose().trainer) == expected
    assert precision(compose("trainer.precision=float32").trainer) == "float32"


def test_steps_per_execution_is_one_on_a_cpu_and_sixteen_with_gpus(monkeypatch):
    assert strategy.steps_per_execution(compose().trainer) == 1
    assert strategy.steps_per_execution(compose("trainer.steps_per_execution=4").trainer) == 4
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    assert strategy.steps_per_execution(compose().trainer) == 16


def test_xla_is_off_by_default_on_a_cpu_and_on_when_asked():
    default = tf.distribute.get_strategy()
    assert not tf.config.list_logical_devices("GPU")
    assert not uses_xla(compose().trainer, default)
    assert uses_xla(compose("trainer.jit_compile=true").trainer, default)


@pytest.mark.e2e
def test_steps_per_execution_runs_the_same_number_of_steps(tmp_path):
    _, optimizer, history = fit(tmp_path, "trainer.epochs=2", "trainer.steps_per_execution=2")
    assert int(optimizer.iterations) == 2 * (64 // 16)
    assert len(history["loss"]) == 2


@pytest.mark.e2e
def test_step_schedule_decays_at_the_given_epochs(tmp_path):
    _, _, history = fit(tmp_path, "schedule=step", "schedule.step_epochs=[1,2]", "optimizer.lr=0.1",
                        "trainer.epochs=3")
    # Every step of an epoch takes one rate: the epoch's.
    assert history["lr"] == pytest.approx([0.1, 0.01, 0.001])


@pytest.mark.e2e
def test_an_epochs_lr_is_the_mean_rate_its_updates_used(tmp_path):
    """A warm-up from 0 over the first epoch's 4 steps uses 0, 0.025, 0.05 and 0.075: the epoch shows
    their mean, not the 0 it starts at; the cosine half's 0.1, 0.085, 0.05, 0.015 average 0.0625.
    Two steps per call: every step counts, not only each call's first."""
    _, _, history = fit(tmp_path, "schedule=cosine", "schedule.warmup_epochs=1", "schedule.min_lr=0",
                        "optimizer.lr=0.1", "trainer.epochs=2", "trainer.steps_per_execution=2")
    assert history["lr"] == pytest.approx([0.0375, 0.0625])


@pytest.mark.e2e
def test_plateau_divides_the_rate_when_val_loss_stalls(tmp_path):
    _, _, history = fit(tmp_path, "schedule=plateau", "schedule.patience=1", "schedule.min_lr=0",
                        "optimizer.lr=1e-9", "trainer.epochs=4")
    # A rate of 1e-9 cannot move the loss: epoch 1 stalls, so epoch 2 starts at a tenth of the rate.
    assert history["lr"] == pytest.approx([1e-9, 1e-9, 1e-10, 1e-11], rel=1e-3)


@pytest.mark.e2e
def test_early_stopping_ends_a_run_that_stops_improving(tmp_path):
    _, _, history = fit(tmp_path, "trainer.early_stopping_patience=1", "optimizer.lr=0", "trainer.epochs=10")
    assert len(history["loss"]) == 2
    assert (tmp_path / "checkpoints" / "best.weights.h5").exists()


@pytest.mark.parametrize("per_call, where", [(1, "at epoch 1, step 3:"), (2, "at epoch 1, steps 3-4:")])
def test_a_nan_loss_stops_training_at_the_step_it_appears(per_call, where):
    cfg = compose(*SMALL, "trainer.epochs=3", f"trainer.steps_per_execution={per_call}", "trainer.jit_compile=false")
    session = prepare(cfg)

    def poison_third_batch(index, batch):
        images, labels = batch
        images = tf.cast(images, tf.float32)  # uint8 holds no NaN; the step's normalise takes floats as well
        return tf.where(index == 2, images * math.nan, images), labels

    splits = dataclasses.replace(session.splits, train=session.splits.train.enumerate().map(poison_third_batch))
    batches_seen = []
    counter = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: batches_seen.append(batch))
    with pytest.raises(loop.Diverged, match=f"^the training loss became nan {where}"):
        loop.fit(dataclasses.replace(session, splits=splits), loop.EpochHooks([counter]))
    assert batches_seen == [0, 1] if per_call == 1 else batches_seen == [1]  # nothing after the NaN


@pytest.mark.e2e
def test_mirrored_runs_of_different_models_follow_one_another_in_one_process():
    """The jobs of an in-process multirun: each MirroredStrategy's collectives are its own, so the
    second model's gradients (another shape) are not taken for the first's."""
    for channels in (1, 3):
        cfg = compose("trainer.epochs=1", "trainer.steps_per_epoch=1", "trainer.strategy=mirrored",
                      "trainer.cpu_replicas=2", f"model.input_shape=[32,32,{channels}]")
        assert math.isfinite(loop.fit(prepare(cfg), loop.EpochHooks([])).history["loss"][0])
        keras.backend.clear_session()
