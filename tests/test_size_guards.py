"""Size guards: a model too large for the machine's memory, or deeper than Keras can build, is refused
in one line before any layer is built or any MLflow run starts; the estimate behind both is held to
the built models here.

The refusals run against a machine of 16 GiB (a patched memory figure), so they refuse the same on
any machine, and the probes' models are never really allocated.
"""

import math
import pathlib
import time

import mlflow
import psutil
import pytest
import tensorflow as tf
from apps import SHELL_UNSET, run_app
from helpers import MODEL_NAMES, REPO, compose, new_store

import builders
from builders import SpecError, names, sizes
from builders.registry import register
from builders.report import report
from runner.architecture.tables import model_spec
from runner.mistakes.errors import UserError
from runner.session import memory_check

GIB = 2**30
SIXTEEN_GIB = memory_check.Limit(16 * GIB, "of memory available")
# What a 16 GB machine (14.9 GiB) has left beside its system: every zoo model's default run fits in it.
ZOO_BUDGET = 14 * GIB
SMALL_RUN = ["trainer.epochs=1", "trainer.steps_per_epoch=1", "trainer.precision=float32"]
NOISE = ("I0000", "W0000", "E0000", "WARNING: All log messages", "To enable the following instructions")


@pytest.fixture
def machine(monkeypatch):
    """A machine with 16 GiB available, where no layer may be built: a guard that fails lets the
    test fail at once instead of allocating the probe's model."""
    monkeypatch.setattr(memory_check, "memory_limit", lambda: SIXTEEN_GIB)

    def no_layer(application, x):
        raise AssertionError(f"{application.path} was built")

    monkeypatch.setattr(builders.model, "_apply", no_layer)


def runner(tmp_path: pathlib.Path, *overrides: str):
    store = new_store(tmp_path)
    result = run_app("runner", *overrides, f"tracking.uri={store}", f"hydra.run.dir={tmp_path / 'run'}",
                     cwd=REPO, env=SHELL_UNSET)
    said = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(NOISE)]
    client = mlflow.MlflowClient(store)
    runs = client.search_runs([experiment.experiment_id for experiment in client.search_experiments()])
    return result.returncode, said, runs


@pytest.mark.parametrize("probe, row", [
    # LeNet's c5 on a 1021x1021x16 map would hold 2 G weights; a small batch keeps c1's activations
    # below them whatever precision `auto` resolves to on this CPU (float32 without bfloat16 support).
    (["model.input_shape=[4096,4096,3]", "trainer.batch_size=8"], "model.blocks[5] (c5: dense)"),
    (["model.blocks.0.filters=1000000"], "model.blocks[0] (c1: conv)"),
])
def test_a_model_too_large_for_memory_is_refused_in_one_line_before_any_run(machine, tmp_path, probe, row):
    code, said, runs = runner(tmp_path, *probe)
    assert code == 2 and len(said) == 1, said
    assert said[0].startswith(f"error: {row} makes the model too large to train here: about "), said
    assert "more than the 16.0 GiB of memory available" in said[0]
    assert "trainer.skip_memory_check=true" in said[0]
    assert runs == []


def test_a_spec_deeper_than_keras_builds_is_refused_with_its_row_count(machine, tmp_path):
    deep = "model.blocks=[{type: flatten}, {type: dense, units: 4, repeat: 10000}, {type: dense, units: 10}]"
    code, said, runs = runner(tmp_path, deep)
    assert code == 2 and len(said) == 1, said
    assert said[0].startswith("error: model.blocks: 3 rows (10002 as applied) make 10003 Keras layers; "
                              f"Keras builds at most about {sizes.max_layers()} here"), said
    assert runs == []


def test_ten_thousand_rows_are_refused_at_once_not_with_a_recursion_error():
    rows = [{"type": "flatten"}, *({"type": "dense", "units": 4} for _ in range(9998)), {"type": "dense", "units": 3}]
    started = time.monotonic()
    with pytest.raises(SpecError, match=r"^model\.blocks: 10000 rows \(10000 as applied\) make 10001 Keras layers"):
        builders.build({"name": "deep", "input_shape": [8, 8, 1], "blocks": rows})
    assert time.monotonic() - started < 10  # it took 3 minutes to fail in Keras


@pytest.mark.e2e
def test_a_chain_at_the_depth_limit_still_builds():
    depth = sizes.max_layers() - 3  # the input, the flatten and the logits
    rows = [{"type": "flatten"}, *({"type": "dense", "units": 2} for _ in range(depth)), {"type": "dense", "units": 3}]
    built = builders.build({"name": "deep", "input_shape": [2, 2, 1], "blocks": rows})
    assert len(built.model.layers) == sizes.max_layers()


@pytest.mark.e2e
def test_the_override_lets_a_borderline_model_through(monkeypatch, tmp_path):
    cfg = compose(*SMALL_RUN)
    need = memory_check.training_need(cfg, tf.distribute.get_strategy(), "float32", builders.estimate(model_spec(cfg)))
    monkeypatch.setattr(memory_check, "memory_limit", lambda: memory_check.Limit(need.total - 1, "of memory available"))
    code, said, runs = runner(tmp_path / "refused", *SMALL_RUN)
    assert code == 2 and said[0].startswith("error: model.blocks["), said
    assert runs == []
    code, said, runs = runner(tmp_path / "let_through", *SMALL_RUN, "trainer.skip_memory_check=true")
    assert code == 0, said
    assert [run.info.status for run in runs] == ["FINISHED"]


def test_a_model_that_just_fits_passes(monkeypatch):
    cfg = compose(*SMALL_RUN)
    strategy = tf.distribute.get_strategy()
    need = memory_check.training_need(cfg, strategy, "float32", builders.estimate(model_spec(cfg)))
    monkeypatch.setattr(memory_check, "memory_limit", lambda: memory_check.Limit(need.total, "of memory available"))
    memory_check.check_memory(cfg, strategy, "float32", model_spec(cfg))
    monkeypatch.setattr(memory_check, "memory_limit", lambda: memory_check.Limit(need.total - 1, "of memory available"))
    with pytest.raises(UserError):
        memory_check.check_memory(cfg, strategy, "float32", model_spec(cfg))


def test_an_evaluation_needs_only_the_forward_pass(monkeypatch):
    # runner.evaluate: no gradient, no optimizer slot, no activation kept for a backward pass.
    cfg = compose("model=vgg16", "data=imagenet")
    strategy, sized = tf.distribute.get_strategy(), builders.estimate(model_spec(cfg))
    trains = memory_check.training_need(cfg, strategy, "float32", sized)
    evaluates = memory_check.training_need(cfg, strategy, "float32", sized, training=False)
    assert evaluates.slots == 0 and evaluates.weights * 3 == trains.weights  # SGD: weight, gradient, momentum
    assert evaluates.batch < trains.batch
    limit = (evaluates.total + trains.total) // 2
    monkeypatch.setattr(memory_check, "memory_limit", lambda: memory_check.Limit(limit, "of memory available"))
    memory_check.check_memory(cfg, strategy, "float32", model_spec(cfg), training=False)
    with pytest.raises(UserError):
        memory_check.check_memory(cfg, strategy, "float32", model_spec(cfg))


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_every_zoo_model_at_its_defaults_fits_a_16_gb_machine(model):
    # float32, the widest precision auto resolves to; the default batch of 64 and SGD with momentum.
    cfg = compose(f"model={model}", "data=imagenet")
    need = memory_check.training_need(cfg, tf.distribute.get_strategy(), "float32", builders.estimate(model_spec(cfg)))
    assert need.slots == 1 and need.batch_size == 64
    assert need.total < ZOO_BUDGET, f"{model}: {need.total / GIB:.1f} GiB"


@pytest.mark.parametrize("optimizer, slots", [("sgd", 1), ("adam", 2), ("adamw", 2)])
def test_optimizer_slots_are_counted_on_the_configured_optimizer(optimizer, slots):
    assert memory_check.optimizer_slots(compose(f"optimizer={optimizer}"), "float32") == slots
    assert memory_check.optimizer_slots(compose("optimizer.momentum=0"), "float32") == 0


def test_on_a_cpu_the_limit_is_the_available_memory():
    limit = memory_check.memory_limit()
    assert abs(limit.bytes - psutil.virtual_memory().available) < GIB
    assert limit.where == "of memory available"


# One model of each block family, at inputs that build in a second: the estimate is the built model's.
ESTIMATED = [("lenet", 32), ("alexnet_grouped", 227), ("googlenet", 224), ("googlenet_naive", 96),
             ("resnet50", 64), ("plain18", 64), ("vgg11_lrn", 32)]


@pytest.mark.parametrize("model, size", ESTIMATED)
def test_the_estimate_matches_the_built_model_row_by_row(model, size):
    spec = model_spec(compose(f"model={model}", "data=imagenet", f"model.input_shape=[{size},{size},3]"))
    sized = builders.estimate(spec)
    built = builders.build(spec)
    layers = names.layers_by_row(built.model, [applied.application for applied in built.rows])
    assert sized.complete
    for estimated, real in zip(sized.rows, report(built).layers, strict=True):
        made = layers[real.name].layers
        assert (list(estimated.output_shape), estimated.params, estimated.layers) == \
            (real.output_shape, real.params, len(made)), real.name
        assert estimated.frozen == sum(math.prod(weight.shape) for layer in made
                                       for weight in layer.non_trainable_weights), real.name
    assert sized.layers == len(built.model.layers)


def test_a_block_without_a_size_function_cannot_register():
    with pytest.raises(RuntimeError, match="no size function"):
        register("sizeless")(lambda x, *, name: x)
