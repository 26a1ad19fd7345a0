"""Evaluate `model.weights` on `data`'s validation split and record it as an MLflow run of its own
(tag runner.role=evaluate: it holds no model), with the metrics a training run ends with."""

import dataclasses

import keras
from omegaconf import DictConfig

from runner.errors import UserError
from runner.tracking.run import Run
from runner.tracking.server import check_store
from runner.training.checks import check_trainer
from runner.training.evaluation import FinalEvaluation, final_evaluation
from runner.training.record import record_evaluation, record_weights
from runner.training.session import Session, prepare
from runner.weights.published import IMAGENET_CLASSES, imagenet_synsets
from runner.weights.source import imagenet_head, predicts_imagenet


def evaluate_weights(cfg: DictConfig) -> float:
    """Evaluates, records and returns sweep.objective (eval_top1 unless it names an eval_* metric)."""
    check_trainer(cfg)
    check_store(cfg)  # a tracking server that does not answer: one line in seconds, before the evaluation
    if not cfg.model.weights:
        raise UserError("model.weights is not set: give imagenet, runs:/<run_id> or a weights file to evaluate")
    # ImageNet's classifier on a dataset of fewer classes: built with 1000, scored on the data's.
    restrict = predicts_imagenet(str(cfg.model.weights)) and cfg.data.num_classes != IMAGENET_CLASSES
    session = prepare(imagenet_head(cfg) if restrict else cfg, training=False)
    if restrict:
        session = _restricted_to_data_classes(session)
    final = final_evaluation(session, None)
    _record(cfg, session, final)
    name = cfg.sweep.objective.value
    return final.metrics.get(name, final.metrics["eval_top1"])


def _restricted_to_data_classes(session: Session) -> Session:
    """The session with a model whose logits are the 1000 ImageNet classes' restricted to the data's
    classes, each a WordNet id (Imagenette's folders), in the data's label order."""
    synsets = imagenet_synsets()
    unknown = [name for name in session.splits.class_ids if name not in synsets]
    if unknown:
        raise UserError(f"model.weights={session.cfg.model.weights} predicts ImageNet's {IMAGENET_CLASSES} "
                        f"classes, and data's classes are not all ImageNet synsets ({unknown[0]!r} is not, "
                        f"e.g. n01440764 is): fine-tune first (python -m runner model.weights=...), then "
                        "evaluate that run")
    indices = [synsets.index(name) for name in session.splits.class_ids]
    model = session.model
    with session.strategy.scope():
        logits = model.outputs[0]
        restricted = keras.Model(model.inputs, keras.ops.take(logits, indices, axis=-1), name=model.name)
    return dataclasses.replace(session, built=dataclasses.replace(session.built, model=restricted))


def _record(cfg: DictConfig, session: Session, final: FinalEvaluation) -> None:
    with Run(cfg) as run:
        run.set_tags({"runner.role": "evaluate"})
        run.log_params(session.recorded_params())
        run.log_metrics(final.metrics, step=0)
        record_weights(run, session)
        record_evaluation(run, session, final.centre)
    shown = ", ".join(f"{key} {value:.4f}" for key, value in final.metrics.items())
    print(f"\n{shown}\nMLflow run {run.run_id}; open the dashboard with:\n  {run.ui_command()}")

