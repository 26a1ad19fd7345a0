"""Evaluate `model.weights` on `data`'s validation split and record it as an MLflow run of its own
(tag runner.role=evaluate: it holds no model), with the metrics a training run ends with, and the
publisher's own figures beside them when the weights' card has them.

It sets up only what scoring needs: the model with its weights and the validation split; no
optimizer, and not one training image listed or decoded (a folder may hold val/ alone)."""

import dataclasses

import keras
from omegaconf import DictConfig

from runner.mistakes.errors import UserError
from runner.session.parts import ModelPart, Session, load_splits, prepare_model
from runner.tracking.labels import EVALUATE_ROLE, ROLE_TAG
from runner.tracking.run import Run
from runner.tracking.server import check_store
from runner.training.checks import check_trainer
from runner.training.evaluation import FinalEvaluation, final_evaluation
from runner.training.record import record_evaluation, record_weights
from runner.weights.card import WeightsCard


@dataclasses.dataclass(frozen=True)
class EvaluateResult:
    """What an evaluation ends with, for its caller (the app hands the objective to a sweeper)."""
    objective: float  # sweep.objective's value: eval_top1 unless it names another eval_* metric
    metrics: dict[str, float]  # eval_top1, eval_top5, ...; published_top1 and _top5 when the card has them
    model: keras.Model  # the network as scored (restricted to the data's classes where the weights have more)
    run_id: str


def evaluate_weights(cfg: DictConfig) -> EvaluateResult:
    """Evaluate model.weights on data's validation split and record the run."""
    check_trainer(cfg)
    check_store(cfg)  # a tracking server that does not answer: one line in seconds, before the evaluation
    if not cfg.model.weights:
        raise UserError("model.weights is not set: give imagenet, runs:/<run_id> or a weights file to evaluate")
    part = prepare_model(cfg, for_training=False, classes_from_weights=True)
    if part.loaded.left_out:
        raise UserError(f"model.weights={cfg.model.weights}: their classifier does not fit data's "
                        f"{cfg.data.num_classes} classes, and they do not say which classes they predict, so "
                        "a new head would be scored at random: fine-tune first (python -m runner "
                        "model.weights=...), then evaluate that run")
    splits = load_splits(part, ("val",))
    session = Session(_scored_on_data_classes(part, splits.class_ids), splits)
    final = final_evaluation(session, None)
    published = published_metrics(part.card)
    run_id = _record(cfg, session, final, published, comparable=session.part is part)
    objective = final.metrics.get(cfg.sweep.objective.value, final.metrics["eval_top1"])
    return EvaluateResult(objective, {**final.metrics, **published}, session.model, run_id)


def _scored_on_data_classes(part: ModelPart, data_ids: list[str]) -> ModelPart:
    """The part as it is when the weights predict the data's classes, in its order; else with a model
    whose logits are those of the data's classes alone, in the data's label order (ImageNet weights on
    Imagenette's synset folders: scored on ten of the thousand, no new head)."""
    card = part.card
    if card is None or card.ids is None or card.ids == tuple(data_ids):
        return part
    unknown = [name for name in data_ids if name not in card.ids]
    if unknown:
        raise UserError(f"model.weights={card.reference} predicts {card.num_classes} classes and data's "
                        f"{len(data_ids)} are not all among them ({unknown[0]!r} is not; {card.ids[0]!r} is): "
                        "fine-tune first (python -m runner model.weights=...), then evaluate that run")
    indices = [card.ids.index(name) for name in data_ids]
    model = part.model
    with part.strategy.scope():
        restricted = keras.Model(model.inputs, keras.ops.take(model.outputs[0], indices, axis=-1), name=model.name)
    return dataclasses.replace(part, built=dataclasses.replace(part.built, model=restricted))


def published_metrics(card: WeightsCard | None) -> dict[str, float]:
    """The publisher's top-1 and top-5 as fractions, the units of eval_top1."""
    if card is None or card.metrics is None:
        return {}
    return {"published_top1": card.metrics.top1 / 100, "published_top5": card.metrics.top5 / 100}


def _record(cfg: DictConfig, session: Session, final: FinalEvaluation, published: dict[str, float],
            comparable: bool) -> str:
    """The run (its id returned), and what it printed. `comparable`: every class of the weights scored, so
    the difference from the publisher's figures means something (it does on their data: ImageNet's
    validation set)."""
    with Run(cfg) as run:
        run.set_tags({ROLE_TAG: EVALUATE_ROLE})
        run.log_params(session.part.recorded_params())
        run.log_metrics({**final.metrics, **published}, step=0)
        record_weights(run, session.part)
        record_evaluation(run, session, final.centre)
    shown = ", ".join(f"{key} {value:.4f}" for key, value in final.metrics.items())
    print(f"\n{shown}")
    for key in ("top1", "top5") if published else ():
        ours, theirs = final.metrics[f"eval_{key}"], published[f"published_{key}"]
        print(f"{key}: {ours:.4f} here, {theirs:.4f} published ({session.part.card.metrics.measured_on}): "
              + (f"{ours - theirs:+.4f}" if comparable else "not comparable, only the data's classes were scored"))
    print(f"MLflow run {run.run_id}; open the dashboard with:\n  {run.ui_command()}")
    return run.run_id
