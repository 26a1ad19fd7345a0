"""The one place a run is set up: `prepare(cfg)` returns a `Session` that training, the bench, the
tests and (later) evaluate and predict start from.

The order is TensorFlow's, not ours to change: the strategy first (multi_worker configures the
runtime, and trainer.cpu_replicas splits the CPU, before any TensorFlow op), then the seed and the
dtype policy (layers take it when they are built), the memory check (from the plan, so that a
model too large for the machine is refused before it takes the memory), then the model under the
strategy's scope, the data (sharded when several workers share the run), and the optimizer, built
at once so that its slots exist before a resumed run restores them and before any step traces. The
`auto` settings are resolved here, once, and recorded from here.
"""

import dataclasses
import pathlib
import tempfile

import keras
import tensorflow as tf
from omegaconf import DictConfig

import builders
from builders.report import Report, report
from builders.rows import BuiltModel
from runner.data.pipeline import Preprocessing
from runner.data.splits import Splits, load
from runner.training.freeze import freeze
from runner.training.memory_check import check_memory
from runner.training.model_report import model_spec
from runner.training.optim import l2_coefficient, make_optimizer
from runner.training.steps import Objective
from runner.training.strategy import Worker, make_strategy, precision, shard, steps_per_execution, uses_xla, worker
from runner.weights.convert import Loaded
from runner.weights.load import load_into, preprocessing
from runner.weights.source import Source, locate


@dataclasses.dataclass(frozen=True)
class Resolved:
    """What trainer.precision, trainer.jit_compile and trainer.steps_per_execution came to here."""

    precision: str
    jit_compile: bool
    steps_per_execution: int

    def as_params(self) -> dict[str, object]:
        return {f"resolved.{field.name}": getattr(self, field.name) for field in dataclasses.fields(self)}


@dataclasses.dataclass
class Session:
    cfg: DictConfig
    strategy: tf.distribute.Strategy
    worker: Worker
    resolved: Resolved
    built: BuiltModel
    report: Report
    splits: Splits
    steps_per_epoch: int  # trainer.steps_per_epoch, or the full batches an epoch of the data holds
    optimizer: keras.optimizers.Optimizer
    objective: Objective
    preprocessing: Preprocessing  # what the model takes: the weights' and the data's (runner.weights.load)
    weights: Source | None = None  # model.weights; None: random initialisation
    loaded: Loaded | None = None  # what of the weights landed where
    frozen: list[str] = dataclasses.field(default_factory=list)  # layers model.freeze keeps fixed now

    @property
    def model(self) -> keras.Model:
        return self.built.model

    @property
    def steps_per_call(self) -> int:
        """Training steps per compiled call: trainer.steps_per_execution, within one epoch."""
        return max(1, min(self.resolved.steps_per_execution, self.steps_per_epoch))

    def recorded_params(self) -> dict[str, object]:
        """The machine's share of the params: replicas, workers and what `auto` resolved to."""
        weights = self.weights.as_params() if self.weights else {}
        return {"replicas": self.strategy.num_replicas_in_sync, "workers": self.worker.count,
                **self.resolved.as_params(), **self.preprocessing.as_params(), **weights}


def prepare(cfg: DictConfig, training: bool = True) -> Session:
    """Strategy, precision, model, data, optimizer and objective of cfg. Every mistake a user can
    make in them (the model spec, the data, the optimizer) surfaces here, before anything is recorded.
    `training` false (runner.evaluate): the memory check counts forward passes alone."""
    strategy = make_strategy(cfg.trainer)  # before any TensorFlow op
    keras.utils.set_random_seed(cfg.trainer.seed)
    resolved = Resolved(precision(cfg.trainer), uses_xla(cfg.trainer, strategy), steps_per_execution(cfg.trainer))
    keras.config.set_dtype_policy(resolved.precision)
    spec = model_spec(cfg)
    check_memory(cfg, strategy, resolved.precision, spec, training)  # before any layer takes memory
    with tempfile.TemporaryDirectory(prefix="weights-") as downloads, strategy.scope():
        weights = locate(cfg, pathlib.Path(downloads))  # a failed download costs no build
        built = builders.build(spec)
        loaded = load_into(built, weights, cfg.data.num_classes) if weights else None
    inputs = preprocessing(cfg.data, weights)
    splits = load(cfg, shard(strategy, cfg.trainer.batch_size), inputs, training)
    steps_per_epoch = epoch_steps(cfg, splits)
    with strategy.scope():
        optimizer = make_optimizer(cfg, steps_per_epoch, resolved.precision)
        # Slots (momentum) must exist before the step loop: none may be created in a tf.while_loop
        # under a distribution strategy, and a resumed run restores them. Frozen rows have theirs
        # too, for trainer.unfreeze_epoch.
        optimizer.build(built.model.trainable_variables)
    frozen = freeze(built, cfg, epoch=0)
    objective = Objective(cfg.data.num_classes, cfg.trainer.label_smoothing, cfg.model.aux_loss_weight,
                          l2_coefficient(cfg))
    return Session(cfg, strategy, worker(strategy), resolved, built, report(built), splits, steps_per_epoch,
                   optimizer, objective, inputs, weights, loaded, frozen)


def epoch_steps(cfg: DictConfig, splits: Splits) -> int:
    """trainer.steps_per_epoch, a cap for smoke runs, or the full batches an epoch of the data holds."""
    return min(splits.steps_per_epoch, cfg.trainer.steps_per_epoch or splits.steps_per_epoch)
