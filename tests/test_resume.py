"""Interrupted runs: killed, preempted, stopped, crashed or diverging, none is lost or left RUNNING."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import mlflow
import numpy as np
import pytest
import tensorflow as tf

from apps import run_app
from helpers import compose, new_store
from runner.mistakes.errors import UserError
from runner.session.strategy import Worker
from runner.training import loop, resume, resume_state

# LeNet on digits, a few short epochs; XLA off: compiling costs more than these steps.
QUICK = ["trainer.epochs=4", "trainer.steps_per_epoch=5", "trainer.jit_compile=false"]


def command(tmp_path, name, *overrides):
    return [sys.executable, "-m", "runner", f"hydra.run.dir={tmp_path}/{name}", *QUICK, *overrides]


def environment(tmp_path):
    return {**os.environ, "MLFLOW_TRACKING_URI": new_store(tmp_path)}


def run_here(tmp_path, name, *overrides):
    """The command in this process, in tmp_path: the resume points go to tmp_path/outputs/resume."""
    return run_app("runner", *command(tmp_path, name, *overrides)[3:], cwd=tmp_path,
                   env={"MLFLOW_TRACKING_URI": new_store(tmp_path)})


def interrupt_after_epoch(tmp_path, epoch, signum, *overrides):
    """Starts a run and sends it `signum` once its resume point holds `epoch` epochs."""
    process = subprocess.Popen(command(tmp_path, "interrupted", *overrides), cwd=tmp_path,
                               env=environment(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while resume_epoch(tmp_path) < epoch:
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "no epoch was saved in time"
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


def resume_epoch(tmp_path) -> int:
    states = list((tmp_path / "outputs" / "resume").glob("*/state.json"))
    return json.loads(states[0].read_text())["epoch"] if states else 0


def runs(tmp_path):
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    return client, client.search_runs([e.experiment_id for e in client.search_experiments()])


def epochs_logged(client, run_id) -> list[int]:
    return sorted(metric.step for metric in client.get_metric_history(run_id, "val_top1"))


def final_weights(path):
    return keras.saving.load_model(path, compile=False).get_weights()


@pytest.mark.e2e
def test_a_preempted_then_killed_run_resumes_and_ends_as_if_never_interrupted(tmp_path):
    # Signals need a process of their own; the runs around them are the same command in this one.
    uninterrupted = run_here(tmp_path, "uninterrupted")
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    assert not list((tmp_path / "outputs" / "resume").iterdir()), "a finished run leaves no resume point"

    returncode, stderr = interrupt_after_epoch(tmp_path, 1, signal.SIGTERM)  # a scheduler preempts it
    assert returncode == 143 and "Traceback" not in stderr, stderr[-3000:]
    assert stderr.strip().splitlines()[-1].startswith("stopped by SIGTERM")
    client, all_runs = runs(tmp_path)
    assert sorted(run_.info.status for run_ in all_runs) == ["FINISHED", "KILLED"]

    returncode, _ = interrupt_after_epoch(tmp_path, 2, signal.SIGKILL)  # the same command, then power loss
    assert returncode == -signal.SIGKILL
    resumed = run_here(tmp_path, "resumed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "after epoch 2" in resumed.stdout

    client, all_runs = runs(tmp_path)
    assert len(all_runs) == 2, "each rerun continued the interrupted run instead of starting another"
    assert all(run_.info.status == "FINISHED" for run_ in all_runs)
    for run_ in all_runs:
        assert epochs_logged(client, run_.info.run_id) == [0, 1, 2, 3]
    # The run's files stay in the folder of the command that started it.
    assert not (tmp_path / "resumed" / "model.keras").exists()
    assert (tmp_path / "interrupted" / "checkpoints" / "best.weights.h5").exists()
    # Same seed, same data order (the resumed run replays the epochs' shuffle seeds): same weights.
    for expected, got in zip(final_weights(tmp_path / "uninterrupted" / "model.keras"),
                             final_weights(tmp_path / "interrupted" / "model.keras")):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.e2e
def test_ctrl_c_ends_the_run_killed_and_keeps_its_resume_point(tmp_path):
    # Enough epochs that the signal lands in training, wherever a step happens to be.
    returncode, stderr = interrupt_after_epoch(tmp_path, 1, signal.SIGINT, "trainer.epochs=100")
    assert returncode == 130 and "Traceback" not in stderr, stderr[-3000:]
    assert stderr.strip().splitlines()[-1].startswith("stopped by SIGINT")
    _, [stopped] = runs(tmp_path)
    assert stopped.info.status == "KILLED"
    assert resume_epoch(tmp_path) >= 1


def test_the_resume_point_follows_what_is_trained_not_where_it_is_recorded():
    key = resume.config_key(compose())
    assert resume.config_key(compose("tracking.uri=sqlite:///elsewhere.db", "trainer.resume=false")) == key
    assert resume.config_key(compose("optimizer.lr=0.02")) != key


def test_resume_false_forgets_the_resume_point(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = compose()
    directory = resume.RESUME_DIR / resume.config_key(cfg)
    (directory / "checkpoints").mkdir(parents=True)
    (directory / resume_state.STATE_FILE).write_text(json.dumps(
        {"run_id": "abc", "epoch": 1, "history": {}, "checkpoint": None}))
    default, chief = tf.distribute.get_strategy(), Worker()

    def located(*overrides):
        with resume.claimed(compose(*overrides), chief) as folder:
            assert folder == directory
            return resume.locate(compose(*overrides), default, chief, tmp_path / "new", folder)

    resumed = located("trainer.resume=true")
    assert (resumed.run_id, resumed.epoch, resumed.run_dir) == ("abc", 1, tmp_path / "new")
    with pytest.raises(UserError, match="trainer.resume_run=other"):
        located("trainer.resume_run=other")
    assert located("trainer.resume_run=abc").run_id == "abc"
    fresh = located("trainer.resume=false")
    assert (fresh.resumed, fresh.epoch, fresh.directory, fresh.run_dir) == (False, 0, directory, tmp_path / "new")
    assert [path.name for path in directory.iterdir()] == ["lock"], "only the lock is left of it"


def test_a_diverging_loss_stops_at_once_and_fails_the_run_with_where(tmp_path):
    result = run_here(tmp_path, "diverged", "optimizer.lr=1e30", "schedule=constant")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error: the training loss became" in result.stderr and "at epoch 1, step" in result.stderr
    client, [failed] = runs(tmp_path)
    assert failed.info.status == "FAILED"
    assert "at epoch 1, step" in failed.data.tags["failure_reason"]
    assert epochs_logged(client, failed.info.run_id) == [], "it stopped inside the first epoch"


def test_an_exception_inside_training_fails_the_run_with_its_reason(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(loop, "evaluate", crash)
    result = run_here(tmp_path, "crashed")
    assert result.returncode == 1 and "RuntimeError: disk full" in result.stderr  # Hydra reports it
    _, [failed] = runs(tmp_path)
    assert failed.info.status == "FAILED" and failed.data.tags["failure_reason"] == "RuntimeError: disk full"


def stateful_callbacks(run_dir):
    return [keras.callbacks.ModelCheckpoint(run_dir / "best.weights.h5", monitor="val_top1", mode="max",
                                            save_best_only=True, save_weights_only=True),
            keras.callbacks.EarlyStopping(monitor="val_top1", mode="max", patience=3),
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=2, factor=0.5)]


def counters(callbacks):
    return [{name: getattr(callback, name) for name in resume.COUNTERS[type(callback)]} for callback in callbacks]


def training(model, optimizer, start, callbacks, run_id="run"):
    """What the loop does with its hooks at the start of training: reset the callbacks, then restore them."""
    point = resume.ResumePoint(start, model, optimizer, run_id)
    listed = keras.callbacks.CallbackList(callbacks, model=model)
    model.stop_training = False
    listed.on_train_begin()
    point.restore_counters(callbacks, model)
    return listed, point


def end_epoch(listed, point, callbacks, model, epoch, logs):
    """The end of an epoch in the loop's order: the callbacks, then the resume point."""
    listed.on_epoch_end(epoch, dict(logs))
    point.save(epoch, {}, callbacks, model)


def test_early_stopping_plateau_and_best_checkpoint_counters_survive_a_resume(tmp_path):
    """Keras resets these counters at the start of training; a resumed run must not restart them."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.build(model.trainable_variables)
    model.optimizer = optimizer
    new = resume.Start(run_dir=tmp_path, directory=tmp_path / "resume")
    # val_top1 peaks at epoch 1, val_loss at epoch 0: both wait when the run is killed after epoch 3.
    epochs = [{"val_top1": 0.5, "val_loss": 1.0}, {"val_top1": 0.7, "val_loss": 1.1},
              {"val_top1": 0.6, "val_loss": 1.2}, {"val_top1": 0.6, "val_loss": 1.3}]
    original = stateful_callbacks(tmp_path)
    listed, point = training(model, optimizer, new, original)
    for epoch, logs in enumerate(epochs[:3]):
        end_epoch(listed, point, original, model, epoch, logs)
    resumed = stateful_callbacks(tmp_path)
    training(model, optimizer, resume.read(tmp_path / "resume"), resumed)
    assert counters(resumed) == counters(original)
    assert counters(resumed)[1]["wait"] == 1 and counters(resumed)[2]["wait"] == 0  # plateau: reduced at 2
    # The next epoch does in the resumed run what it would have done in the original one.
    listed.on_epoch_end(3, dict(epochs[3]))
    lr_uninterrupted = float(optimizer.learning_rate)
    optimizer.learning_rate = 0.05  # as restored from the checkpoint after epoch 3
    keras.callbacks.CallbackList(resumed, model=model).on_epoch_end(3, dict(epochs[3]))
    assert counters(resumed) == counters(original) and float(optimizer.learning_rate) == lr_uninterrupted


def test_a_run_that_early_stopping_ended_stays_ended_when_resumed(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.build(model.trainable_variables)
    stopper = keras.callbacks.EarlyStopping(monitor="val_top1", mode="max", patience=1)
    # As on a non-chief worker of a multi-worker run, which records no MLflow run: it resumes all the same.
    listed, point = training(model, optimizer, resume.Start(run_dir=tmp_path, directory=tmp_path / "resume"),
                             [stopper], run_id=None)
    for epoch, top1 in enumerate([0.5, 0.4]):
        end_epoch(listed, point, [stopper], model, epoch, {"val_top1": top1})
    assert model.stop_training
    again = keras.callbacks.EarlyStopping(monitor="val_top1", mode="max", patience=1)
    saved = resume.read(tmp_path / "resume")
    assert saved.resumed and saved.run_id is None
    training(model, optimizer, saved, [again], run_id=None)
    assert model.stop_training, "the resumed run would train past its early stop"
