"""The run's figures: learning curves and the validation confusion matrix.

Figures are built on matplotlib.figure.Figure, not pyplot, so no global figure state builds up
over a long sweep and no display is needed.
"""

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import confusion_matrix as count_confusions

CURVE_PANELS = (("loss", "loss"), ("top-1 accuracy", "top1"))  # (title, Keras history key)
MAX_ANNOTATED_CLASSES = 20  # above this, numbers in the cells are unreadable
MAX_LABELLED_CLASSES = 50  # above this (ImageNet's 1000), the tick labels are too, and slow to draw


def curves(history: dict[str, list[float]]) -> Figure:
    """Train and validation loss and top-1 per epoch, one panel each; missing series are left out."""
    figure = Figure(figsize=(11, 4), layout="constrained")
    for axes, (title, key) in zip(figure.subplots(1, len(CURVE_PANELS)), CURVE_PANELS):
        for series, label in ((key, "train"), (f"val_{key}", "validation")):
            values = history.get(series)
            if values:
                # Markers, so a one-epoch run still shows a point.
                axes.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=label)
        axes.set(title=title, xlabel="epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend()
    return figure


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> Figure:
    """Counts of (true, predicted) class pairs on validation; the title carries top-1 and n."""
    n_classes = len(class_names)
    counts = count_confusions(y_true, y_pred, labels=np.arange(n_classes))
    side = min(4 + 0.35 * n_classes, 14)
    figure = Figure(figsize=(side + 1.5, side), layout="constrained")
    axes = figure.subplots()
    figure.colorbar(axes.imshow(counts, cmap="Blues"), ax=axes)
    if n_classes <= MAX_LABELLED_CLASSES:
        ticks = np.arange(n_classes)
        axes.set_xticks(ticks, class_names, rotation=90)
        axes.set_yticks(ticks, class_names)
    if n_classes <= MAX_ANNOTATED_CLASSES:
        _annotate(axes, counts)
    top1 = np.trace(counts) / max(counts.sum(), 1)
    axes.set(title=f"validation: top-1 {top1:.3f}, n = {counts.sum()}", xlabel="predicted", ylabel="true")
    return figure


def _annotate(axes, counts: np.ndarray) -> None:
    dark = counts.max() / 2  # white text on the darker half of the colour map
    for (row, column), count in np.ndenumerate(counts):
        axes.text(column, row, count, ha="center", va="center", fontsize=8, color="white" if count > dark else "black")


def mistakes(images: np.ndarray, titles: list[str]) -> Figure:
    """A grid of images, each under its title; gray images in gray."""
    columns = max(1, min(4, len(images)))
    rows = max(1, -(-len(images) // columns))
    figure = Figure(figsize=(3 * columns, 3.3 * rows), layout="constrained")
    figure.suptitle("the most confident mistakes")
    for index, axes in enumerate(np.ravel(figure.subplots(rows, columns, squeeze=False))):
        axes.set_axis_off()
        if index < len(images):
            image = images[index]
            axes.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255)
            axes.set_title(titles[index], fontsize=8)
    return figure
