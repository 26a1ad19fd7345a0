"""The three ways back from a unit to the pixels, side by side for the same units (one line per
shown image: the unit where the top row's strongest channel peaks in it):

* the gradient (Simonyan, Vedaldi & Zisserman 2014): how each pixel changes the unit, through every
  layer as it is;
* the deconvnet (Zeiler & Fergus 2014, Section 2.1): switches unpool, transposed filters, and each
  ReLU passes the positive part of the signal coming down, whatever its forward input;
* guided backpropagation (Springenberg et al. 2015): both masks at each ReLU, the forward one and
  the deconvnet's, so only what excites the unit and was active comes back.
"""

import pathlib

import keras
import numpy as np

from runner.visualize import deconvnet, figures, guided
from runner.visualize.row_layers import Row
from runner.visualize.scan import Scan
from runner.visualize.scores import scored_unit

METHODS = ("gradient", "deconvnet", "guided")


def all_three(probe: keras.Model, images: np.ndarray, channel: int) -> tuple[dict[str, np.ndarray], list[str]]:
    """Each method's projection of `channel`'s peak in each image, and what the user should know."""
    with scored_unit(probe):
        plain = guided.input_gradients(probe, images, channel)
        projected, deconvolved = deconvnet.projections(probe, images, channel)
        guided_gradients, guided_through = guided.guided_gradients(probe, images, channel)
    notes = []
    others = sorted(set(guided_through) - {"relu"})
    if not guided_through:
        notes.append("the network has no element-wise activation below this row: the deconvnet and guided "
                     "backpropagation are the plain gradient there")
    elif others:
        notes.append(f"guided backpropagation: {', '.join(others)} got the guided rule (only the positive "
                     "signal passes back) with their own derivative")
    notes += deconvnet.caveats(deconvolved)
    return {"gradient": plain, "deconvnet": projected, "guided": guided_gradients}, notes


def figure(model: keras.Model, probe: keras.Model, row: Row, channel: int, scan: Scan,
           folder: pathlib.Path) -> tuple[pathlib.Path, list[str]]:
    projected, notes = all_three(probe, scan.shown, channel)
    grid = figures.Grid(len(scan.shown), 1 + len(METHODS),
                        f"{model.name} {row.name} channel {channel}, at its peak in each image:\n"
                        f"{', '.join(METHODS)} back to the pixels")
    pictures = scan.drawn(slice(len(scan.shown)))
    for line, label in enumerate(scan.labels):
        grid.tile(line, 0, figures.picture(pictures[line]), label)
        for column, method in enumerate(METHODS, start=1):
            grid.tile(line, column, gradient_picture(projected[method][line]), method if line == 0 else "")
    return grid.save(folder / f"projections_{row.name}.png"), notes


def gradient_picture(gradient: np.ndarray) -> np.ndarray:
    """A projection [H, W, C] as an image in [0, 1]: centred on grey, +-3 standard deviations to the
    ends; one channel is drawn grey."""
    centred = gradient - gradient.mean()
    return figures.picture(np.clip(0.5 + centred / (6 * centred.std() + 1e-12), 0, 1))
