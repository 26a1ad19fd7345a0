"""Figure 2 of Zeiler & Fergus (2014) for one row: for each of its strongest channels, the validation
images where it peaks highest, each cropped to the peak unit's receptive field (crops.py), beside
the deconvnet projection of that unit cropped alike. The projection shows which pixels of the
patch drive the unit; the patch shows what they were.
"""

import pathlib

import keras
import numpy as np

from runner.visualize import crops, deconvnet, figures
from runner.visualize.projections import gradient_picture
from runner.visualize.row_layers import Row
from runner.visualize.scan import Scan
from runner.visualize.scores import scored_unit

TILE = 80  # pixels: a patch may be most of the image (VGG-16's conv5_3 sees 196 of 224)


def figure(model: keras.Model, probe: keras.Model, row: Row, channels: np.ndarray, scan: Scan,
           normalise, patches: int, folder: pathlib.Path) -> pathlib.Path:
    """Lines: `channels`; columns: min(patches, scanned images) pairs (projection, patch), best first;
    the PNG is figures.grid_size(lines, 2 * pairs, TILE) pixels."""
    place = crops.placement(model, row.layer)
    count = min(patches, len(scan.pictures))
    width = row.layer.output.shape[2]
    grid = figures.Grid(len(channels), 2 * count, _title(model, row, place, len(channels), count, scan),
                        tile_size=TILE)
    for line, channel in enumerate(channels):
        best = scan.best(channel, count)
        projected = _projections(probe, normalise(scan.pictures[best]), int(channel))
        for pair, (index, projection) in enumerate(zip(best, projected)):
            top, left = place.box(*divmod(int(scan.where[index, channel]), width))
            size = place.field
            patch = crops.cropped(scan.drawn(index), top, left, size)
            back = crops.cropped(projection, top, left, size, outside=0.0)  # no signal beyond the image
            grid.tile(line, 2 * pair, gradient_picture(back), f"ch {channel}" if pair == 0 else "")
            grid.tile(line, 2 * pair + 1, figures.picture(patch), f"{scan.peaks[index, channel]:.2f}")
    return grid.save(folder / f"figure2_{row.name}.png")


def _projections(probe: keras.Model, images, channel: int) -> np.ndarray:
    """The deconvnet projection of the unit the scan scored, so the peak projected is the peak cropped."""
    with scored_unit(probe):
        projected, _ = deconvnet.projections(probe, keras.ops.convert_to_numpy(images), channel)
    return projected


def _title(model: keras.Model, row: Row, place: crops.Placement, lines: int, count: int, scan: Scan) -> str:
    return (f"{model.name} {row.name}, Zeiler & Fergus Figure 2: its {lines} strongest channels, the top {count} "
            f"of {len(scan.pictures)} images\neach unit's {place.field}x{place.field} px field (jump "
            f"{place.jump}): deconvnet projection, then the patch; {scan.score_name()}")
