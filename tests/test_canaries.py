"""Canaries: the private or undocumented parts of other packages the code relies on, each checked for
exactly what the code uses. A release that renames, drops or changes one fails here by name, with the
module of ours that relies on it and the installed release against the range pyproject.toml allows,
instead of as a puzzle in an end-to-end test. The Keras optimizer's EMA lists have theirs in
tests/test_ema_and_accumulation.py."""

import contextlib
import importlib
import importlib.metadata
import inspect
import logging
import sys

import hydra
import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml
from hydra.core.global_hydra import GlobalHydra
from packaging.requirements import Requirement

from helpers import CONF


def release(dist: str, via: str = "") -> str:
    """`dist`'s installed version, and the range this project's installed metadata (pyproject.toml's
    dependencies) allows it, or the dependency `via` that brings it."""
    pins = [Requirement(text) for text in importlib.metadata.requires("classic-cnns") or ()]
    pin = next((req for req in pins if req.name == (via or dist) and req.marker is None), None)
    installed = importlib.metadata.version(dist)
    if via:
        return f"{dist} {installed}, not pinned, installed with {pin}"
    inside = "inside" if pin.specifier.contains(installed, prereleases=True) else "OUTSIDE"
    return f"{dist} {installed}, {inside} the pinned range {pin}"


@contextlib.contextmanager
def relied_on(api: str, ours: str, dist: str, via: str = ""):
    """Any failure in the block, an assertion or an error, as one message naming all of it."""
    try:
        yield
    except Exception as error:
        pytest.fail(f"{api}, which {ours} relies on, changed in {release(dist, via)}: "
                    f"{type(error).__name__}: {error}")


def test_hydra_internal_utils_get_args_parser_reads_help_and_overrides_as_hydra_main_does():
    from hydra._internal import utils as hydra_internals

    with relied_on("hydra._internal.utils.get_args_parser", "runner/shell/help.py", "hydra-core"):
        # argparse takes the overrides as one run of words: help.py adds its own right after the last
        args = hydra_internals.get_args_parser().parse_args(["--help", "model=lenet", "data=digits"])
        assert args.help is True, f"--help reads as {args.help!r}"
        assert args.overrides == ["model=lenet", "data=digits"], f"the overrides read as {args.overrides!r}"
        assert hydra_internals.get_args_parser().parse_args(["model=lenet"]).help is False


def test_hydra_main_reports_what_composing_raises_through_hydra_internal_utils_run_and_report(monkeypatch):
    from hydra._internal import utils as hydra_internals
    from hydra.errors import ConfigCompositionException

    with relied_on("hydra._internal.utils.run_and_report", "runner/shell/app.py", "hydra-core"):
        caught = []
        real = hydra_internals.run_and_report

        def watching(function):
            def watched():
                try:
                    return function()
                except Exception as error:
                    caught.append(error)
                    raise
            return real(watched)

        monkeypatch.setattr(hydra_internals, "run_and_report", watching)  # where runner/shell/app.py patches it
        monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
        monkeypatch.setattr(sys, "argv", ["canary", "no_such_key=1"])
        try:
            with contextlib.suppress(SystemExit):
                hydra.main(config_path=None, version_base="1.3")(lambda cfg: None)()
        finally:
            GlobalHydra.instance().clear()
        assert any(isinstance(error, ConfigCompositionException) for error in caught), (
            f"the module's run_and_report no longer receives the composing that fails (it saw {caught})")


def test_hydra_reads_config_files_with_the_loader_omegaconf_utils_get_yaml_loader_returns(monkeypatch, tmp_path):
    from omegaconf import _utils as omegaconf_utils

    with relied_on("omegaconf._utils.get_yaml_loader", "runner/config/bounded_yaml.py", "omegaconf"):
        keys = []

        class Watching(omegaconf_utils.get_yaml_loader()):
            def get_single_node(self):
                node = super().get_single_node()
                if isinstance(node, yaml.MappingNode):
                    keys.extend(key.value for key, _ in node.value)
                return node

        monkeypatch.setattr(omegaconf_utils, "get_yaml_loader", lambda *args, **kwargs: Watching)
        (tmp_path / "canary.yaml").write_text("canary_key: 1\n")
        with hydra.initialize_config_dir(str(tmp_path), version_base="1.3"):
            hydra.compose("canary")
        assert "canary_key" in keys, "Hydra's config files are no longer read with the loader it returns"


def test_keras_flatten_layers_lists_every_nested_layer_but_the_model_itself():
    with relied_on("keras.Model._flatten_layers(include_self=False)", "runner/training/fused_norm.py", "keras"):
        inputs = keras.Input((4, 4, 2))
        inner = keras.Sequential([keras.layers.BatchNormalization(name="inner_norm")], name="inner")
        model = keras.Model(inputs, inner(keras.layers.BatchNormalization(name="outer_norm")(inputs)), name="outer")
        names = [layer.name for layer in model._flatten_layers(include_self=False)]
        assert {"outer_norm", "inner", "inner_norm"} <= set(names) and "outer" not in names, (
            f"it no longer lists the layers nested in a model, the model excluded: {names}")


def test_tf_raw_ops_fused_batch_norm_v3_takes_the_arguments_used_and_returns_bessels_variance():
    with relied_on("tf.raw_ops.FusedBatchNormV3", "runner/training/fused_norm.py", "tensorflow"):
        x = tf.reshape(tf.constant([1.0, 2.0, 3.0, 4.0]), [1, 2, 2, 1])
        scale, offset = tf.ones([1]), tf.zeros([1])
        outputs, mean, variance = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=scale, offset=offset, mean=tf.zeros([0]), variance=tf.zeros([0]), epsilon=0.0,
            exponential_avg_factor=1.0, data_format="NHWC", is_training=True)[:3]
        assert np.allclose([mean[0], variance[0]], [2.5, 5 / 3]), (
            f"training: batch mean {mean[0]} and variance {variance[0]}, not 2.5 and Bessel's 5/3")
        inference = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=scale, offset=offset, mean=tf.constant([1.0]), variance=tf.constant([4.0]), epsilon=0.0,
            data_format="NHWC", is_training=False)[0]
        assert np.allclose(tf.reshape(inference, [-1]), [0.0, 0.5, 1.0, 1.5]), "inference: not (x - mean) / std"


def test_a_mirrored_strategys_collective_group_keys_start_after_its_class_collective_key_base(monkeypatch):
    with relied_on("tf.distribute.MirroredStrategy._collective_key_base", "runner/session/strategy.py",
                   "tensorflow"):
        assert isinstance(tf.distribute.MirroredStrategy._collective_key_base, int), "it is no class attribute"
        monkeypatch.setattr(tf.distribute.MirroredStrategy, "_collective_key_base", 90_000)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
        key = strategy.extended._collective_keys.get_group_key(["/cpu:0"])
        assert 90_000 < key < 100_000, f"a strategy made after setting it to 90000 uses the group key {key}"


def test_keras_history_operation_is_the_layer_that_made_a_symbolic_tensor():
    with relied_on("KerasTensor._keras_history.operation", "runner/visualize/scores.py", "keras"):
        inputs = keras.Input((4, 4, 1))
        convolution, pooling = keras.layers.Conv2D(2, 3, activation="tanh"), keras.layers.MaxPooling2D()
        model = keras.Model(inputs, pooling(convolution(inputs)))
        assert model.output._keras_history.operation is pooling, "a model's output does not name its layer"
        assert pooling.input._keras_history.operation is convolution, "a layer's input does not name the one below"


def test_model_checkpoint_saves_through_get_file_path_should_save_model_and_save_model(tmp_path):
    asked, elsewhere = tmp_path / "asked.weights.h5", tmp_path / "elsewhere.weights.h5"
    calls = []

    class Redirected(keras.callbacks.ModelCheckpoint):
        def _get_file_path(self, epoch, batch, logs):
            calls.append(("path", super()._get_file_path(epoch, batch, logs)))
            return str(elsewhere)

        def _should_save_model(self, epoch, batch, logs, filepath):
            calls.append(("should", filepath))
            return super()._should_save_model(epoch, batch, logs, filepath)

        def _save_model(self, epoch, batch, logs):
            calls.append(("save", epoch))
            super()._save_model(epoch, batch, logs)

    with relied_on("keras.callbacks.ModelCheckpoint's _get_file_path, _should_save_model and _save_model",
                   "runner/training/whole_checkpoint.py", "keras"):
        callback = Redirected(str(asked), monitor="loss", mode="min", save_best_only=True, save_weights_only=True)
        callback.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
        callback.on_epoch_end(0, logs={"loss": 1.0})
        assert calls == [("save", 0), ("path", str(asked)), ("should", str(elsewhere))], f"the calls: {calls}"
        assert elsewhere.exists() and not asked.exists(), "it no longer writes where _get_file_path says"
        elsewhere.unlink()
        callback.on_epoch_end(1, logs={"loss": 2.0})
        assert not elsewhere.exists(), "it writes a best checkpoint _should_save_model declined"


def test_keras_callbacks_keep_the_counters_a_resume_restores_as_plain_attributes(tmp_path):
    from runner.training.resume import COUNTERS

    with relied_on("the counters of EarlyStopping, ReduceLROnPlateau and ModelCheckpoint (resume.COUNTERS)",
                   "runner/training/resume.py", "keras"):
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        for kind, names in COUNTERS.items():
            callback = kind(str(tmp_path / "c.weights.h5")) if kind is keras.callbacks.ModelCheckpoint else kind()
            callback.set_model(model)
            callback.on_train_begin()
            missing = [name for name in names if name not in vars(callback)]
            assert not missing, f"{kind.__name__} no longer keeps {missing} in its instance's attributes"
        stopping = keras.callbacks.EarlyStopping(monitor="loss", mode="min", patience=2)
        stopping.set_model(model)
        stopping.on_train_begin()
        vars(stopping).update(wait=1, best=0.5, best_epoch=3, stopped_epoch=0)  # as a resumed run sets them
        stopping.on_epoch_end(4, logs={"loss": 0.9})
        assert model.stop_training, "EarlyStopping set back to one epoch short of its patience did not stop"


def test_submitit_polls_with_the_command_slurm_info_watcher_make_command_gives(monkeypatch):
    from submitit.core import core

    from runner.slurm_queue import GONE, SQUEUE, QueueWatcher

    with relied_on("submitit's SlurmInfoWatcher._make_command, _registered and _finished",
                   "runner/slurm_queue.py", "submitit", via="hydra-submitit-launcher"):
        ran, answers = [], [b"7|RUNNING|node\n", b""]
        monkeypatch.setattr(core.subprocess, "check_output", lambda command, **kwargs: ran.append(command) or
                            answers[len(ran) - 1])
        watcher = QueueWatcher(delay_s=600)
        watcher.register_job("7")
        watcher.update()
        assert ran == [SQUEUE] and watcher.get_state("7", mode="cache") == "RUNNING", (
            f"update() ran {ran}, then read the job as {watcher.get_state('7', mode='cache')}")
        watcher.update()
        assert watcher.get_state("7", mode="cache") == GONE and "7" in watcher._finished, "an ended job stays open"
        watcher.update()
        assert len(ran) == 2, "update() runs a command when _make_command returns None"


def state_watcher(state: str):
    """submitit's SLURM watcher, knowing every job's state without asking SLURM."""
    from submitit.slurm.slurm import SlurmInfoWatcher

    watcher = SlurmInfoWatcher(delay_s=600)
    watcher.get_state = lambda job_id, mode="standard": state
    return watcher


def test_submitit_slurm_jobs_ask_the_watcher_their_class_holds(monkeypatch, tmp_path):
    from submitit.slurm.slurm import SlurmJob

    with relied_on("submitit.slurm.slurm.SlurmJob.watcher", "runner/slurm_polling.py", "submitit",
                   via="hydra-submitit-launcher"):
        monkeypatch.setattr(SlurmJob, "watcher", state_watcher("CANCELLED"))
        job = SlurmJob(folder=tmp_path, job_id="7")
        assert "7" in SlurmJob.watcher._registered, "a new job no longer registers with its class's watcher"
        assert job.done() and job.state == "CANCELLED", "a job no longer asks its class's watcher its state"


def test_submitit_raises_core_utils_uncompleted_job_error_for_a_job_without_a_result(monkeypatch, tmp_path):
    from submitit.slurm.slurm import SlurmJob

    with relied_on("submitit.core.utils.UncompletedJobError", "runner/shell/app.py", "submitit",
                   via="hydra-submitit-launcher"):
        monkeypatch.setattr(SlurmJob, "watcher", state_watcher("CANCELLED"))
        job = SlurmJob(folder=tmp_path, job_id="7")
        job._results_timeout_s = 0  # no result file will come: do not wait for one
        lost = sys.modules["submitit.core.utils"].UncompletedJobError
        with pytest.raises(lost):
            job.result()


def test_the_submitit_launchers_target_is_the_path_runner_slurm_polling_compares_with():
    from runner.slurm_polling import SLURM_LAUNCHER

    with relied_on(SLURM_LAUNCHER, "runner/slurm_polling.py", "hydra-submitit-launcher"):
        with hydra.initialize_config_dir(str(CONF), version_base="1.3"):
            config = hydra.compose("config", overrides=["hydra/launcher=submitit_slurm"], return_hydra_config=True)
        assert config.hydra.launcher._target_ == SLURM_LAUNCHER, f"its target is {config.hydra.launcher._target_}"
        module, _, name = SLURM_LAUNCHER.rpartition(".")
        assert hasattr(importlib.import_module(module), name), "the class is gone"


def test_mlflow_utils_validation_max_tag_val_length_is_a_length():
    with relied_on("mlflow.utils.validation.MAX_TAG_VAL_LENGTH", "runner/tracking/run.py",
                   "mlflow"):
        from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

        assert isinstance(MAX_TAG_VAL_LENGTH, int) and MAX_TAG_VAL_LENGTH > 0, f"it is {MAX_TAG_VAL_LENGTH!r}"


def test_mlflow_utils_mlflow_tags_names_the_parent_run_tag_mlflow_itself_sets():
    with relied_on("mlflow.utils.mlflow_tags.MLFLOW_PARENT_RUN_ID", "runner/tracking/labels.py and "
                   "runner/compare/select.py", "mlflow"):
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
        from mlflow.tracking import fluent

        assert MLFLOW_PARENT_RUN_ID == "mlflow.parentRunId", f"it is {MLFLOW_PARENT_RUN_ID!r}"
        assert "MLFLOW_PARENT_RUN_ID" in inspect.getsource(fluent.start_run), "start_run(nested=True) sets another"


def test_mlflow_logs_its_sqlite_errors_on_the_logger_runner_logs_filters():
    with relied_on("the logger mlflow.store.db.utils and its 'SQLAlchemy database error' line", "runner/shell/logs.py",
                   "mlflow"):
        module = importlib.import_module("mlflow.store.db.utils")
        assert module._logger is logging.getLogger("mlflow.store.db.utils"), "the module logs on another logger"
        assert '"SQLAlchemy database error' in inspect.getsource(module), "the line starts otherwise"
