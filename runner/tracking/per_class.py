"""Per-class figures of a validation pass, beside the confusion matrix: each class's precision,
recall (its accuracy) and F1, and the pairs of classes most often taken one for the other."""

import csv
import io

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

CONFUSED_PAIRS = 10  # most confused (true, predicted) pairs listed


def table(labels: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> dict[str, list]:
    """Columns class, images, precision, recall, f1 (one row per class, in label order); a class
    never predicted has precision 0, as scikit-learn's zero_division=0 says."""
    indices = np.arange(len(class_names))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=indices, zero_division=0)
    return {"class": list(class_names), "images": support.tolist(), "precision": precision.round(4).tolist(),
            "recall": recall.round(4).tolist(), "f1": f1.round(4).tolist()}


def confused_pairs(labels: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> dict[str, list]:
    """The (true, predicted) pairs of different classes counted most often, most first."""
    counts = confusion_matrix(labels, predicted, labels=np.arange(len(class_names)))
    np.fill_diagonal(counts, 0)
    order = np.argsort(-counts, axis=None, kind="stable")[:CONFUSED_PAIRS]
    pairs = [np.unravel_index(flat, counts.shape) for flat in order if counts.flat[flat] > 0]
    return {"true": [class_names[true] for true, _ in pairs], "predicted": [class_names[guess] for _, guess in pairs],
            "images": [int(counts[true, guess]) for true, guess in pairs]}


def as_csv(columns: dict[str, list]) -> str:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*columns.values()))
    return text.getvalue()
