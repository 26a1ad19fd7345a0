"""Evaluation: the validation split through the compiled eval step, and the run's final metrics.

The last epoch has already evaluated the final weights on the centre crops, so the final
evaluation reuses that pass (its predictions make the confusion matrix) and computes only what is
new: AlexNet's ten crops with eval.ten_crop, VGG's scales with eval.scales. On ImageNet that spares a
50,000-image pass per run.
`val_loss` is the training loss's cross-entropy, label smoothing included (what Keras's fit
reports); no loss is logged at the end, only top-1 and top-5, which smoothing does not change.
"""

import dataclasses
from typing import Optional

import numpy as np
import tensorflow as tf

from runner.progress import bar as progress_bar, finish
from runner.session.parts import Session
from runner.session.strategy import distributed
from runner.training import steps


@dataclasses.dataclass
class Evaluation:
    metrics: dict[str, float]  # loss, top1, top5
    labels: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray  # the predicted class's probability, per example

    def confident_mistakes(self, count: int) -> np.ndarray:
        """Indices of the `count` wrong predictions made with the highest confidence, highest first."""
        wrong = np.flatnonzero(self.predicted != self.labels)
        return wrong[np.argsort(-self.confidence[wrong], kind="stable")][:count]


@dataclasses.dataclass
class FinalEvaluation:
    # eval_top1, eval_top5; with eval.ten_crop the *_10crop pair, with eval.scales the *_multiscale pair
    metrics: dict[str, float]
    centre: Evaluation  # the centre-crop pass the metrics and the confusion matrix come from


def evaluate(session: Session, dataset: tf.data.Dataset, eval_step, progress: bool = False) -> Evaluation:
    """`progress`: Keras's progress bar over the batches, for a pass of its own (an epoch's runs under
    the epoch's bar)."""
    totals = {key: 0.0 for key in steps.SUMS}
    labels, predicted, confidence = [], [], []
    known = int(dataset.cardinality())
    bar = progress_bar(known if known >= 0 else None, unit_name="batch") if progress else None
    batches = 0
    for images, batch_labels in distributed(session.strategy, dataset):
        batch_totals, batch_predicted, batch_true, batch_confidence = eval_step(images, batch_labels)
        for key, value in batch_totals.items():
            totals[key] += float(value)
        predicted.append(batch_predicted.numpy())
        labels.append(batch_true.numpy())
        confidence.append(batch_confidence.numpy())
        batches += 1
        if bar:
            bar.update(batches)
    if bar and bar.target is None:  # a bar of unknown length ends when the data does
        finish(bar, batches)
    return Evaluation(steps.averages(totals), np.concatenate(labels), np.concatenate(predicted),
                      np.concatenate(confidence))


def final_evaluation(session: Session, last_epoch: Optional[Evaluation]) -> FinalEvaluation:
    """eval_top1/eval_top5 on centre crops (the last epoch's pass when there was one: a run resumed
    after its last epoch evaluates again), and with eval.ten_crop and eval.scales the metrics of their views."""
    splits = session.splits
    centre = last_epoch or evaluate(session, splits.val, steps.make_eval_step(session), progress=True)
    metrics = {"eval_top1": centre.metrics["top1"], "eval_top5": centre.metrics["top5"]}
    several = {"10crop": splits.val_ten_crop, "multiscale": splits.val_scales}  # suffix: views of each image
    for suffix, dataset in several.items():
        if dataset is not None:
            views = evaluate(session, dataset, steps.make_eval_step(session, views=True), progress=True)
            metrics.update({f"eval_{key}_{suffix}": views.metrics[key] for key in ("top1", "top5")})
    return FinalEvaluation(metrics, centre)


MISTAKES_SHOWN = 16  # mistakes.png: the most confident wrong predictions, 4 x 4


def mistakes(session: Session, centre: Evaluation) -> tuple[np.ndarray, list[str]]:
    """The images (uint8, as the pipeline reads them) of the most confident wrong predictions of the
    centre-crop pass, and a title for each: true and predicted class, and the confidence. The pass
    over the validation images stops at the last one needed, and decodes only."""
    chosen = centre.confident_mistakes(MISTAKES_SHOWN)
    wanted, found, start = set(chosen.tolist()), {}, 0
    for images, _ in session.splits.val:
        if not wanted - found.keys():
            break
        for offset in range(len(images)):
            if start + offset in wanted:
                found[start + offset] = images[offset].numpy()
        start += len(images)
    names = session.splits.class_names
    titles = [f"true {names[centre.labels[index]]}\npredicted {names[centre.predicted[index]]} "
              f"({centre.confidence[index]:.2f})" for index in chosen]
    return np.array([found[index] for index in chosen]), titles


def sweep_objective(cfg, final: FinalEvaluation, trained) -> float:
    """sweep.objective: a final metric, or the last epoch's validation figure (val_top1, val_loss)."""
    name = cfg.sweep.objective.value
    return final.metrics[name] if name in final.metrics else trained.history[name][-1]
