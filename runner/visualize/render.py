"""The figures of a trained model, from its validation images (Zeiler & Fergus 2014).

The validation images are read once, in order (scan.py): the first n = min(images, validation
images) are shown, and up to max(images, max_images) are scored on the top row's channels (the top
row: visualize.top_row, else the last spatial row). Its channels are ranked by the mean of their
top_k highest scores; the first is "the strongest channel". A score is the channel's peak in an
image, before a saturating activation (scores.py: tanh would read 1.00 for all).

PNG sizes are figures.grid_size(lines, columns): width max(320, 4 + 68 * columns) and height
28 + 80 * lines pixels (64-pixel tiles); figure2 has 80-pixel tiles, figures.grid_size(lines,
columns, figure2.TILE), and filters.png is filters.panel_size. With k =
min(feature_channels, the row's channels), c = min(channels, the top row's channels), t = min(top_k,
scanned images) and p = min(patches, scanned images):
  filters.png                  the first Conv2D's filters, one colour scale: filters.model_filters
  feature_maps_<row>.png       n lines x (1 + k) columns: the image, then its k most active channels
                               (mean |activation| over the n images), one colour scale per channel
  top_images_<row>.png         c lines x t columns: per strongest channel, the scanned images where it
                               scores highest, a red ring on the peak's feature-map cell
  projections_<row>.png        n lines x 4 columns: image, then the gradient, the deconvnet and guided
                               backpropagation of the strongest channel's peak (projections.py)
  figure2_<row>.png            c lines x 2p columns: per strongest channel, its top p images cropped to
                               the peak unit's receptive field, each after its deconvnet projection
  gradcam_<row>.png            n lines x 5 columns and a caption (grid_size(n, 5, footer=figures.CAPTION)):
                               image, Grad-CAM of the predicted and the true class over it, Guided
                               Grad-CAM of each (gradcam.py); the row: visualize.gradcam_row, else the
                               last convolution row
  occlusion.png                n lines x 3 columns and a caption: image, the true class's probability and
                               the most probable class as a grey square slides (occlusion.py)
"""

import dataclasses
import pathlib
from collections.abc import Callable, Iterable, Mapping, Sequence

import keras
import numpy as np

from runner.config.schema import VisualizeConfig
from runner.visualize import figure2, figures, filters, gradcam, occlusion, projections
from runner.visualize.classes import Classes
from runner.visualize.row_layers import Row, default_rows, explained_row, model_rows, pick
from runner.visualize.scan import Scan, scan


class Options(VisualizeConfig):
    """visualize's settings, as the figures read them; runner/config/schema.py holds their defaults."""

    @classmethod
    def of(cls, cfg: Mapping) -> "Options":
        return cls(**{field.name: cfg[field.name] for field in dataclasses.fields(cls)})


def visualize(model: keras.Model, spec: Mapping, batches: Iterable, class_names: Sequence[str],
              normalise: Callable, options: Options, folder: pathlib.Path,
              classes: Classes | None = None) -> tuple[list[pathlib.Path], list[str]]:
    """Writes the figures into `folder`; returns their paths and notes worth printing.

    `batches` yields (uint8 images [B, H, W, C], labels [B]), as the pipeline gives them; `normalise`
    maps them to what the model takes (runner.data.splits.Splits.normalise). Drawn are the uint8 pictures.
    `classes`: what the classifier predicts; None: `class_names`, the data's."""
    shown_rows, top, explained = chosen_rows(model, spec, options)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [filters.model_filters(model, folder / "filters.png")]
    top_probe = _probe(model, top)
    scanned = scan(top_probe, batches, class_names, normalise, options.images, options.max_images, progress=True)
    for row in shown_rows:
        paths.append(_feature_maps(model, row, scanned, options, folder))
    ranked = scanned.ranked_channels(options.top_k)[: options.channels]
    paths.append(_top_images(model, top, ranked, scanned, folder, options.top_k))
    path, notes = projections.figure(model, top_probe, top, int(ranked[0]), scanned, folder)
    paths.append(path)
    paths.append(figure2.figure(model, top_probe, top, ranked, scanned, normalise, options.patches, folder))
    classes = classes or Classes.of(keras.tree.flatten(model.outputs)[0].shape[-1], class_names)
    paths.append(gradcam.figure(model, explained, scanned, classes, folder))
    paths.append(occlusion.figure(model, scanned, classes, dataclasses.asdict(options), folder))
    return paths, notes


def chosen_rows(model: keras.Model, spec: Mapping, options: Options) -> tuple[list[Row], Row, Row]:
    """The rows whose feature maps are drawn, the top row and Grad-CAM's row; a name that is no spatial
    row is an error."""
    rows = model_rows(model, spec)
    names = list(dict.fromkeys(options.rows or []))  # each once, in order
    shown_rows = [pick(rows, name, "visualize.rows", model) for name in names] or default_rows(rows)
    top = (pick(rows, options.top_row, "visualize.top_row", model) if options.top_row
           else [row for row in rows if row.spatial][-1])
    return shown_rows, top, explained_row(model, spec, options.gradcam_row, "visualize.gradcam_row")


def _probe(model: keras.Model, row: Row) -> keras.Model:
    return keras.Model(model.inputs[0], row.layer.output)


def _feature_maps(model: keras.Model, row: Row, scan: Scan, options: Options, folder: pathlib.Path) -> pathlib.Path:
    maps = keras.ops.convert_to_numpy(_probe(model, row)(scan.shown, training=False))  # [n, h, w, C]
    activity = np.abs(maps).mean(axis=(0, 1, 2))
    channels = np.argsort(-activity, kind="stable")[: options.feature_channels]
    shape = "x".join(str(size) for size in maps.shape[1:])
    title = f"{model.name} {row.name} ({row.type}, {shape}): feature maps\nof its {len(channels)} most active channels"
    grid = figures.Grid(len(maps), 1 + len(channels), title)
    pictures = scan.drawn(slice(len(scan.shown)))
    for line, label in enumerate(scan.labels):
        _draw(grid, line, 0, pictures[line], label)
        for column, channel in enumerate(channels, start=1):
            # One colour scale per channel, shared by the images: brighter is a stronger response.
            low, high = float(maps[..., channel].min()), float(maps[..., channel].max())
            grid.tile(line, column, figures.rescaled(maps[line, ..., channel], low, high),
                      label=f"ch {channel}" if line == 0 else "", cmap="viridis", vmin=0, vmax=1)
    return grid.save(folder / f"feature_maps_{row.name}.png")


def _top_images(model: keras.Model, row: Row, channels: np.ndarray, scan: Scan, folder: pathlib.Path,
                top_k: int) -> pathlib.Path:
    height, width = row.layer.output.shape[1:3]
    count = min(top_k, len(scan.pictures))
    grid = figures.Grid(len(channels), count, f"{model.name} {row.name}: its {len(channels)} strongest channels and "
                                              f"the {count} of {len(scan.pictures)} validation images\nexciting "
                                              f"each most, a ring on the peak; {scan.score_name()}")
    for line, channel in enumerate(channels):
        for column, index in enumerate(scan.best(channel, count)):
            score = f"{scan.peaks[index, channel]:.2f}"
            _draw(grid, line, column, scan.drawn(index), f"ch {channel}: {score}" if column == 0 else score)
            y, x = divmod(int(scan.where[index, channel]), width)
            grid.mark(line, column, (y + 0.5) / height, (x + 0.5) / width)  # the peak's feature-map cell
    return grid.save(folder / f"top_images_{row.name}.png")


def _draw(grid: figures.Grid, line: int, column: int, image: np.ndarray, label: str) -> None:
    grid.tile(line, column, figures.picture(image), label)
