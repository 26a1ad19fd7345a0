"""The run's figures: learning curves, the validation confusion matrix and the most confident mistakes.

Figures are built on matplotlib.figure.Figure, not pyplot, so no global figure state builds up
over a long sweep and no display is needed. Their margins are fixed, or computed from the labels'
lengths: matplotlib's constrained layout measures every artist first, which cost about half of a
small run's figure time (0.45 s of 0.9 s per figure on a CPU).
"""

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import confusion_matrix as count_confusions

CURVE_PANELS = (("loss", "loss"), ("top-1 accuracy", "top1"))  # (title, Keras history key)
MAX_ANNOTATED_CLASSES = 20  # above this, numbers in the cells are unreadable
MAX_LABELLED_CLASSES = 50  # above this (ImageNet's 1000), the tick labels are too, and slow to draw
# How the figures are written: PNG at zlib's fastest level, half of mistakes.png's write (0.32 s to 0.15 s on
# a CPU, every run) for a file a fifth larger.
SAVED_AS = {"pil_kwargs": {"compress_level": 1}}


def curves(history: dict[str, list[float]]) -> Figure:
    """Train and validation loss and top-1 per epoch, one panel each; missing series are left out."""
    figure = Figure(figsize=(11, 4))
    panels = figure.subplots(1, len(CURVE_PANELS), gridspec_kw={"left": 0.06, "right": 0.98, "bottom": 0.13,
                                                                 "top": 0.91, "wspace": 0.2})
    for axes, (title, key) in zip(panels, CURVE_PANELS):
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
    labelled = n_classes <= MAX_LABELLED_CLASSES
    # Room for the longest tick label (about 0.075 inch a character at the default 10 pt) and the axis label.
    label = 0.6 + (0.075 * max(len(name) for name in class_names) if labelled else 0.2)
    width, height = side + 1.5 + label, side + label
    figure = Figure(figsize=(width, height))
    axes = figure.add_axes((label / width, label / height, side / width, (side - 0.5) / height))
    figure.colorbar(axes.imshow(counts, cmap="Blues"), ax=axes)
    if labelled:
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
    """A grid of images (four a line), each under its title; gray images in gray.

    The tiles are pasted into one picture, drawn as one image with the titles over its blank bands:
    a set of axes per image cost about twice as much (16 images: 0.27 s a run). Bands and gaps are
    fractions of a tile, so the grid looks the same at every input size."""
    columns = max(1, min(4, len(images)))
    rows = max(1, -(-len(images) // columns))
    height, width = images.shape[1:3]
    gap, band = max(1, min(height, width) // 14), max(1, height // 4)
    cell_width, cell_height = width + gap, band + height + gap
    tiles = np.full((rows * cell_height + gap, columns * cell_width + gap, *images.shape[3:]), 255, np.uint8)
    inches = 3.3 * rows + 0.5  # the figure's height: 0.5 inch for its title
    figure = Figure(figsize=(3 * columns, inches))
    axes = figure.add_axes((0.02, 0.01, 0.96, 1 - 0.55 / inches))
    axes.set_axis_off()
    for index, (image, title) in enumerate(zip(images, titles)):
        top, left = (index // columns) * cell_height + band, (index % columns) * cell_width + gap
        tiles[top : top + height, left : left + width] = image
        axes.text(left + width / 2, top - gap / 2, title, fontsize=8, ha="center", va="bottom")
    axes.imshow(tiles[..., 0] if tiles.shape[-1] == 1 else tiles, cmap="gray", vmin=0, vmax=255)
    figure.suptitle("the most confident mistakes", y=1 - 0.1 / inches)
    return figure
