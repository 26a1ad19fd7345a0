"""The four figures of a trained model, from its validation images (Zeiler & Fergus 2014).

The validation images are read once, in order: the first n = min(images, validation images) are
shown, and up to max(images, max_images) are scanned for the top row's activations (the top row:
visualize.top_row, else the last spatial row). Its channels are ranked by the mean of their top_k
highest per-image peaks; the first is "the strongest channel".

PNG sizes are figures.grid_size(lines, columns): width max(320, 4 + 68 * columns) and height
28 + 80 * lines pixels (64-pixel tiles). With k = min(feature_channels, the row's channels),
c = min(channels, the top row's channels) and t = min(top_k, scanned images):
  filters.png                  the first Conv2D's F kernels, figures.square_layout(F): ceil(sqrt F) columns,
                               each scaled to its own min and max; RGB for 3 input channels, else gray
  feature_maps_<row>.png       n lines x (1 + k) columns: the image, then its k most active channels
                               (mean |activation| over the n images), one colour scale per channel
  top_images_<row>.png         c lines x t columns: per strongest channel, the scanned images where it
                               peaks highest, a red ring on the peak's feature-map cell
  guided_backprop_<row>.png    n lines x 3 columns: image, plain gradient and guided backpropagation
                               of the strongest channel's peak with respect to the image
"""

import dataclasses
import pathlib
from typing import Callable, Iterable, Mapping, Sequence

import keras
import numpy as np

from runner.errors import UserError
from runner.visualize import figures, guided
from runner.visualize.rows import Row, default_rows, model_rows, pick


@dataclasses.dataclass(frozen=True)
class Options:
    rows: Sequence[str] | None = None
    images: int = 8
    feature_channels: int = 16
    top_row: str | None = None
    channels: int = 8
    top_k: int = 6
    max_images: int = 512

    @classmethod
    def of(cls, cfg: Mapping) -> "Options":
        return cls(**{field.name: cfg[field.name] for field in dataclasses.fields(cls)})


@dataclasses.dataclass
class Scan:
    """What the pass over the validation images keeps."""

    shown: np.ndarray  # the first `images` images, normalised as the model takes them
    labels: list[str]  # their class names
    pictures: np.ndarray  # every scanned image as the pipeline gave it: uint8 [N, H, W, C], shown ones first
    peaks: np.ndarray  # [N, channels]: each image's largest activation in each channel of the top row
    where: np.ndarray  # [N, channels]: its position, flattened over the top row's height x width

    def drawn(self, index) -> np.ndarray:
        """The scanned picture(s) at `index` (an int or a slice) for drawing: float in [0, 1]."""
        return self.pictures[index].astype(np.float32) / 255


def visualize(model: keras.Model, spec: Mapping, batches: Iterable, class_names: Sequence[str],
              normalise: Callable, options: Options,
              folder: pathlib.Path) -> tuple[list[pathlib.Path], list[str]]:
    """Writes the figures into `folder`; returns their paths and notes worth printing.

    `batches` yields (uint8 images [B, H, W, C], labels [B]), as the pipeline gives them; `normalise`
    maps them to what the model takes (runner.data.splits.Splits.normalise). Drawn are the uint8 pictures."""
    shown_rows, top = chosen_rows(model, spec, options)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [_filters(model, folder)]
    top_probe = _probe(model, top)
    scan = _scan(top_probe, batches, class_names, normalise, options)
    for row in shown_rows:
        paths.append(_feature_maps(model, row, scan, options, folder))
    ranked = _ranked_channels(scan.peaks, options.top_k)
    paths.append(_top_images(top, ranked[: options.channels], scan, folder, options.top_k))
    path, notes = _guided_backprop(model, top_probe, top, ranked[0], scan, folder)
    return paths + [path], notes


def chosen_rows(model: keras.Model, spec: Mapping, options: Options) -> tuple[list[Row], Row]:
    """The rows whose feature maps are drawn and the top row; a name that is no spatial row is an error."""
    rows = model_rows(model, spec)
    names = list(dict.fromkeys(options.rows or []))  # each once, in order
    shown_rows = [pick(rows, name, "visualize.rows", model) for name in names] or default_rows(rows)
    top = (pick(rows, options.top_row, "visualize.top_row", model) if options.top_row
           else [row for row in rows if row.spatial][-1])
    return shown_rows, top


def _probe(model: keras.Model, row: Row) -> keras.Model:
    return keras.Model(model.inputs[0], row.layer.output)


def _filters(model: keras.Model, folder: pathlib.Path) -> pathlib.Path:
    layer = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    kernel = keras.ops.convert_to_numpy(layer.kernel)  # [kh, kw, in_channels / groups, filters]
    count = kernel.shape[-1]
    lines, columns = figures.square_layout(count)
    height, width, depth = kernel.shape[:3]
    colour = depth == 3
    grid = figures.Grid(lines, columns, f"{model.name} {layer.name}\n{count} filters {height}x{width}x{depth}"
                        + ("" if depth in (1, 3) else ", mean over input channels"))
    for index in range(count):
        weights = kernel[..., index] if colour else kernel[..., index].mean(axis=-1)
        picture = figures.rescaled(weights)  # per filter, as Zeiler & Fergus show them
        grid.tile(*divmod(index, columns), picture, str(index))
    return grid.save(folder / "filters.png")


def _scan(probe: keras.Model, batches: Iterable, class_names: Sequence[str],
          normalise: Callable, options: Options) -> Scan:
    wanted = max(options.images, options.max_images)
    shown, labels, pictures, peaks, where, seen = [], [], [], [], [], 0
    for batch, batch_labels in batches:
        batch = np.asarray(batch)[: wanted - seen]
        images = keras.ops.convert_to_numpy(normalise(batch))
        if options.images > seen:
            shown.append(images[: options.images - seen])
            labels += [class_names[int(label)] for label in np.asarray(batch_labels)[: options.images - seen]]
        maps = keras.ops.convert_to_numpy(probe(images, training=False))
        flat = maps.reshape(len(maps), -1, maps.shape[-1])  # [B, positions, channels]
        peaks.append(flat.max(axis=1))
        where.append(flat.argmax(axis=1))
        pictures.append(batch)
        seen += len(images)
        if seen >= wanted:
            break
    if not seen:
        raise UserError("the validation split has no images to visualise")
    return Scan(np.concatenate(shown), labels, np.concatenate(pictures), np.concatenate(peaks),
                np.concatenate(where))


def _ranked_channels(peaks: np.ndarray, top_k: int) -> np.ndarray:
    """Channels by the mean of their top_k highest peaks over the images, strongest first."""
    k = min(top_k, len(peaks))
    strongest = np.sort(peaks, axis=0)[-k:]
    return np.argsort(-strongest.mean(axis=0), kind="stable")


def _feature_maps(model: keras.Model, row: Row, scan: Scan, options: Options, folder: pathlib.Path) -> pathlib.Path:
    maps = keras.ops.convert_to_numpy(_probe(model, row)(scan.shown, training=False))  # [n, h, w, C]
    activity = np.abs(maps).mean(axis=(0, 1, 2))
    channels = np.argsort(-activity, kind="stable")[: options.feature_channels]
    shape = "x".join(str(size) for size in maps.shape[1:])
    grid = figures.Grid(len(maps), 1 + len(channels),
                        f"{model.name} {row.name} ({row.type}, {shape})\nits {len(channels)} most active channels")
    pictures = scan.drawn(slice(len(scan.shown)))
    for line, label in enumerate(scan.labels):
        _draw(grid, line, 0, pictures[line], label)
        for column, channel in enumerate(channels, start=1):
            # One colour scale per channel, shared by the images: brighter is a stronger response.
            low, high = float(maps[..., channel].min()), float(maps[..., channel].max())
            grid.tile(line, column, figures.rescaled(maps[line, ..., channel], low, high),
                      label=f"ch {channel}" if line == 0 else "", cmap="viridis", vmin=0, vmax=1)
    return grid.save(folder / f"feature_maps_{row.name}.png")


def _top_images(row: Row, channels: np.ndarray, scan: Scan, folder: pathlib.Path, top_k: int) -> pathlib.Path:
    height, width = row.layer.output.shape[1:3]
    count = min(top_k, len(scan.pictures))
    grid = figures.Grid(len(channels), count, f"{row.name}: its {len(channels)} strongest channels\nand the "
                                              f"{count} of {len(scan.pictures)} validation images exciting each most")
    for line, channel in enumerate(channels):
        best = np.argsort(-scan.peaks[:, channel], kind="stable")[:count]
        for column, index in enumerate(best):
            image = scan.drawn(index)
            label = f"ch {channel}: {scan.peaks[index, channel]:.2f}" if column == 0 else \
                f"{scan.peaks[index, channel]:.2f}"
            _draw(grid, line, column, image, label)
            y, x = divmod(int(scan.where[index, channel]), width)
            grid.mark(line, column, (y + 0.5) / height, (x + 0.5) / width)  # the peak's feature-map cell
    return grid.save(folder / f"top_images_{row.name}.png")


def _guided_backprop(model: keras.Model, probe: keras.Model, row: Row, channel: int, scan: Scan,
                     folder: pathlib.Path) -> tuple[pathlib.Path, list[str]]:
    plain = guided.input_gradients(probe, scan.shown, channel)
    guided_grads, counts = guided.guided_gradients(probe, scan.shown, channel)
    notes = []
    if counts:
        through = ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))
        title = f"{row.name} channel {channel}: image, gradient,\nguided backprop (through {through})"
    else:
        title = f"{row.name} channel {channel}: image, gradient,\ngradient again: nothing to guide"
        notes.append(f"guided backpropagation: {model.name} has no element-wise activation to guide, "
                     "so its column is the plain gradient")
    if set(counts) - {"relu"}:
        notes.append(f"guided backpropagation: {model.name} has non-ReLU activations "
                     f"({', '.join(sorted(set(counts) - {'relu'}))}); the guided rule (only positive "
                     "gradients pass back) was applied to them with their own derivative")
    grid = figures.Grid(len(scan.shown), 3, title)
    pictures = scan.drawn(slice(len(scan.shown)))
    for line, label in enumerate(scan.labels):
        _draw(grid, line, 0, pictures[line], label)
        _draw(grid, line, 1, _gradient_picture(plain[line]), "gradient" if line == 0 else "")
        _draw(grid, line, 2, _gradient_picture(guided_grads[line]), "guided" if line == 0 else "")
    return grid.save(folder / f"guided_backprop_{row.name}.png"), notes


def _gradient_picture(gradient: np.ndarray) -> np.ndarray:
    """A gradient [H, W, C] as an image in [0, 1]: centred on grey, +-3 standard deviations to the ends."""
    centred = gradient - gradient.mean()
    return np.clip(0.5 + centred / (6 * centred.std() + 1e-12), 0, 1)


def _draw(grid: figures.Grid, line: int, column: int, image: np.ndarray, label: str) -> None:
    grid.tile(line, column, figures.picture(image), label)
