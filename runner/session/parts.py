"""The one place a run is set up, in parts that each app composes as it needs:

* `prepare_model(cfg)` -> `ModelPart`: the strategy, the resolved precision, the built model with its
  starting weights and their card, and what the model is fed (every app);
* `load_splits(part, splits)`: the data of the splits asked for (evaluate and visualize: val only);
* `prepare_training(part, splits)` -> `TrainingPart`: the optimizer and its slots, the loss, the
  steps per epoch (training and the bench);
* `prepare(cfg)` -> `Session`: all three, what training and the bench start from.

The order is TensorFlow's, not ours to change: the strategy first (multi_worker configures the
runtime, and trainer.cpu_replicas splits the CPU, before any TensorFlow op), then the seed and the
dtype policy (layers take it when they are built), the weights' card (their classes can size the
model), the memory check (from the plan, so that a model too large for the machine is refused before
it takes the memory), then the model under the strategy's scope, the data (sharded when several
workers share the run), and the optimizer, built at once so that its slots exist before a resumed run
restores them and before any step traces. The `auto` settings are resolved here, once, and recorded
from here.
"""

import dataclasses
import pathlib
import tempfile
from collections.abc import Collection

import keras
import tensorflow as tf
from omegaconf import DictConfig

import builders
from builders.rows import BuiltModel
from runner.architecture.tables import Described, described, model_spec
from runner.data import balance
from runner.data.pipeline import Preprocessing
from runner.data.splits import ALL_SPLITS, Splits, evaluation_crop, load
from runner.mistakes.errors import UserError
from runner.session.memory_check import check_memory
from runner.session.strategy import Worker, make_strategy, precision, shard, steps_per_execution, uses_xla, worker
from runner.training.accumulation import check_passes
from runner.training.freeze import freeze
from runner.training.fused_norm import fuse_batch_norms
from runner.training.loss import Loss
from runner.training.optim import l2_coefficient, make_optimizer
from runner.weights.card import WeightsCard, model_inputs
from runner.weights.convert import Loaded
from runner.weights.load import load_into
from runner.weights.reference import as_the_weights_need, classifier_rows, locate


@dataclasses.dataclass(frozen=True)
class Resolved:
    """What trainer.precision, trainer.jit_compile and trainer.steps_per_execution came to here."""

    precision: str
    jit_compile: bool
    steps_per_execution: int

    def as_params(self) -> dict[str, object]:
        return {f"resolved.{field.name}": getattr(self, field.name) for field in dataclasses.fields(self)}


@dataclasses.dataclass(frozen=True)
class ModelPart:
    cfg: DictConfig  # as the model was built: its classifier rows at the weights' classes, when they decide
    strategy: tf.distribute.Strategy
    worker: Worker
    resolved: Resolved
    built: BuiltModel
    report: Described  # with the classes data= sized the head for
    classifier: tuple[str, ...]  # the rows that predict the classes, the last first
    preprocessing: Preprocessing  # what the model takes: the weights' card's and the data's
    card: WeightsCard | None = None  # of model.weights; None: random initialisation
    loaded: Loaded | None = None  # what of the weights landed where

    @property
    def model(self) -> keras.Model:
        return self.built.model

    def recorded_params(self) -> dict[str, object]:
        """The machine's share of the params: replicas, workers, what `auto` resolved to, the evaluation's
        crop, the inputs and the weights' card."""
        card = self.card.as_params() if self.card else {}
        return {"replicas": self.strategy.num_replicas_in_sync, "workers": self.worker.count,
                **self.resolved.as_params(), "resolved.eval_resize_ratio": evaluation_crop(self.cfg),
                **self.preprocessing.as_params(), **card}


@dataclasses.dataclass(frozen=True)
class TrainingPart:
    optimizer: keras.optimizers.Optimizer
    loss: Loss
    steps_per_epoch: int  # trainer.steps_per_epoch, or the full batches an epoch of the data holds
    steps_per_call: int  # training steps per compiled call: trainer.steps_per_execution, within one epoch


@dataclasses.dataclass(frozen=True)
class Session:
    """A model part and its data (evaluate, figures), with a training part (training, the bench)."""

    part: ModelPart
    splits: Splits
    training: TrainingPart | None = None

    @property
    def cfg(self) -> DictConfig:
        return self.part.cfg

    @property
    def strategy(self) -> tf.distribute.Strategy:
        return self.part.strategy

    @property
    def worker(self) -> Worker:
        return self.part.worker

    @property
    def model(self) -> keras.Model:
        return self.part.model


def prepare(cfg: DictConfig) -> Session:
    """Model, data and training part of cfg. Every mistake a user can make in them (the model spec,
    the data, the optimizer) surfaces here, before anything is recorded."""
    part = prepare_model(cfg)
    splits = load_splits(part)
    return Session(part, splits, prepare_training(part, splits))


def prepare_model(cfg: DictConfig, *, for_training: bool = True, classes_from_weights: bool = False) -> ModelPart:
    """Strategy, precision and the model with its weights. `for_training` false: the memory check counts
    forward passes alone. `classes_from_weights`: the classifier is as many classes as the weights'
    card says (predict, export, figures, evaluate), not data.num_classes with a new head."""
    strategy = make_strategy(cfg.trainer)  # before any TensorFlow op
    keras.utils.set_random_seed(cfg.trainer.seed)
    resolved = Resolved(precision(cfg.trainer), uses_xla(cfg.trainer, strategy), steps_per_execution(cfg.trainer))
    keras.config.set_dtype_policy(resolved.precision)
    with tempfile.TemporaryDirectory(prefix="weights-") as downloads:
        weights = locate(cfg, pathlib.Path(downloads))  # a failed download costs no build
        given = cfg  # its classifier rows still say ${data.num_classes}: classifier_rows finds them
        if weights:
            cfg = as_the_weights_need(cfg, weights.card, own_classes=classes_from_weights)
        spec = model_spec(cfg)
        check_memory(cfg, strategy, resolved.precision, spec, for_training)  # before any layer takes memory
        with strategy.scope():
            built = builders.build(spec)
            fuse_batch_norms(built.model)  # one kernel each way instead of Keras's ten passes (fused_norm.py)
            rows = classifier_rows(given, built)
            classifier = _weights_classifier(weights.card, rows, built) if weights else rows
            loaded = load_into(built, weights, classifier) if weights else None
    card = weights.card if weights else None
    return ModelPart(cfg, strategy, worker(strategy), resolved, built, described(built, cfg), rows,
                     model_inputs(cfg.data, card), card, loaded)


def _weights_classifier(card: WeightsCard, rows: tuple[str, ...], built: BuiltModel) -> tuple[str, ...]:
    """The rows the card says predict its classes (this model's own, for weights that do not say),
    which a new head replaces: rows of this model, or the weights are another architecture's."""
    if not card.classifier:
        return rows
    names = {row.application.name for row in built.rows}
    unknown = [row for row in card.classifier if row not in names]
    if unknown and set(unknown) <= set(card.classifier[1:]):  # auxiliary heads only: model.aux_loss_weight=0
        raise UserError(f"model.weights={card.reference}: their auxiliary heads ({', '.join(unknown)}) have no "
                        f"rows in model {built.model.name}, which model.aux_loss_weight=0 leaves out: keep it "
                        "above 0 to load them (predict and export leave them out anyway)")
    if unknown:
        raise UserError(f"model.weights={card.reference}: their classifier row {unknown[0]} is no row of model "
                        f"{built.model.name} (its classifier: {', '.join(rows)}): are they another architecture's?")
    return card.classifier


def load_splits(part: ModelPart, splits: Collection[str] = ALL_SPLITS) -> Splits:
    """The data of `splits` (train, val), normalised as the model takes it, sharded across workers."""
    return load(part.cfg, shard(part.strategy, part.cfg.trainer.batch_size), part.preprocessing, splits)


def prepare_training(part: ModelPart, splits: Splits) -> TrainingPart:
    cfg = part.cfg
    check_passes(cfg.trainer.batch_size, cfg.trainer.grad_accumulation, part.strategy.num_replicas_in_sync)
    steps_per_epoch = epoch_steps(cfg, splits)
    with part.strategy.scope():
        optimizer = make_optimizer(cfg, steps_per_epoch, part.resolved.precision)
        # Slots (momentum) must exist before the step loop: none may be created in a tf.while_loop
        # under a distribution strategy, and a resumed run restores them. Frozen rows have theirs
        # too, for trainer.unfreeze_epoch.
        optimizer.build(part.model.trainable_variables)
    freeze(part.built, cfg, epoch=0)
    loss = Loss(cfg.data.num_classes, cfg.trainer.label_smoothing, cfg.model.aux_loss_weight,
                l2_coefficient(cfg), balance.class_weights(cfg.data.class_weights, splits.class_counts))
    steps_per_call = max(1, min(part.resolved.steps_per_execution, steps_per_epoch))
    return TrainingPart(optimizer, loss, steps_per_epoch, steps_per_call)


def epoch_steps(cfg: DictConfig, splits: Splits) -> int:
    """trainer.steps_per_epoch, a cap for smoke runs, or the full batches an epoch of the data holds."""
    return min(splits.steps_per_epoch, cfg.trainer.steps_per_epoch or splits.steps_per_epoch)
