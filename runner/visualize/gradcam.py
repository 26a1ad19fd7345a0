"""Grad-CAM and Guided Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks
via Gradient-based Localization", Sections 3 and 3.1): where in the image a row's feature maps hold the
evidence for a class.

For class c and a row's feature maps A^k (k its channels), the weight of channel k is the global average
of the gradient of the class score over its map, alpha_k = mean_ij d y^c / d A^k_ij (Eq. 1), with y^c the
score before the softmax; the map is ReLU(sum_k alpha_k A^k) (Eq. 2), upsampled bilinearly to the image.
Guided Grad-CAM is guided backpropagation of y^c to the pixels (guided.py) times that upsampled map
(Section 3.1), which keeps the fine detail of the one and the class selectivity of the other.
"""

import dataclasses
import pathlib

import keras
import matplotlib
import numpy as np
import tensorflow as tf

from runner.visualize import figures, guided
from runner.visualize.classes import Classes
from runner.visualize.projections import gradient_picture
from runner.visualize.row_layers import Row
from runner.visualize.scan import Scan

CAPTION = ("Grad-CAM: red marks where the row's feature maps hold the evidence for the class named above "
           "(top: the predicted one; true, or 2nd: the runner-up); Guided Grad-CAM shows the pixels there that "
           "raise its score.")


@dataclasses.dataclass
class Explanation:
    maps: np.ndarray  # [N, H, W] Grad-CAM of each image's class, upsampled to the image, >= 0
    guided: np.ndarray  # [N, H, W, C] Guided Grad-CAM: guided backpropagation times `maps`
    probabilities: np.ndarray  # [N, classes] the softmax of the scores


def explainer(model: keras.Model, row: Row) -> keras.Model:
    """The network mapping images to (the row's feature maps, the main classifier's scores), one graph."""
    return keras.Model(model.inputs[0], [row.layer.output, keras.tree.flatten(model.outputs)[0]])


def grad_cam(explaining: keras.Model, images: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Grad-CAM [N, h, w] at the row's resolution, probabilities [N, classes]) of class classes[n] in
    images[n]. Batch norm runs in inference mode, so summing the scores gives each image its own gradient."""
    x = tf.convert_to_tensor(images, tf.float32)
    with tf.GradientTape() as tape:
        maps, scores = explaining(x, training=False)
        scores = tf.cast(scores, tf.float32)
        chosen = tf.gather(scores, tf.convert_to_tensor(classes, tf.int32), batch_dims=1)
    gradients = tf.cast(tape.gradient(chosen, maps), tf.float32)
    weights = tf.reduce_mean(gradients, axis=(1, 2))  # alpha_k^c, Eq. 1: [N, K]
    cams = tf.nn.relu(tf.einsum("nhwk,nk->nhw", tf.cast(maps, tf.float32), weights))  # Eq. 2
    return cams.numpy(), tf.nn.softmax(scores).numpy()


def upsampled(cams: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Grad-CAM maps [N, h, w] at the image's `size` (height, width), bilinearly as the paper does."""
    return tf.image.resize(cams[..., None], size, method="bilinear")[..., 0].numpy()


def class_gradients(explaining: keras.Model, images: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Guided backpropagation of each image's class score to its pixels [N, H, W, C]."""
    x = tf.convert_to_tensor(images, tf.float32)
    with guided.guided_activations(explaining):
        with tf.GradientTape() as tape:
            tape.watch(x)
            scores = tf.cast(explaining(x, training=False)[1], tf.float32)
            chosen = tf.gather(scores, tf.convert_to_tensor(classes, tf.int32), batch_dims=1)
        return tape.gradient(chosen, x).numpy()


def explain(explaining: keras.Model, images: np.ndarray, classes: np.ndarray) -> Explanation:
    """Grad-CAM and Guided Grad-CAM of class classes[n] in images[n] (normalised as the model takes them)."""
    cams, probabilities = grad_cam(explaining, images, classes)
    maps = upsampled(cams, images.shape[1:3])
    return Explanation(maps, class_gradients(explaining, images, classes) * maps[..., None], probabilities)


def figure(model: keras.Model, row: Row, scan: Scan, classes: Classes, folder: pathlib.Path) -> pathlib.Path:
    """gradcam_<row>.png: a line per shown image: the image, Grad-CAM over it for the predicted and for
    the true class, then Guided Grad-CAM of each; the labels give the class and its probability. An image
    whose label is none of the classifier's classes (weights on other data) gets the runner-up instead."""
    explaining = explainer(model, row)
    scores = keras.ops.convert_to_numpy(explaining(scan.shown, training=False)[1])
    ranked = np.argsort(-scores, axis=1, kind="stable")
    truth = [classes.index(label) for label in scan.labels]
    compared = np.array([ranked[line, 1] if true is None else true for line, true in enumerate(truth)])
    of_predicted, of_compared = explain(explaining, scan.shown, ranked[:, 0]), explain(explaining, scan.shown, compared)
    shape = "x".join(str(size) for size in row.layer.output.shape[1:])
    grid = figures.Grid(len(scan.shown), 5, f"{model.name} {row.name} ({shape}): Grad-CAM and\nGuided "
                                            "Grad-CAM of the predicted and the true class", footer=figures.CAPTION)
    pictures = scan.drawn(slice(len(scan.shown)))
    for line, label in enumerate(scan.labels):
        grid.tile(line, 0, figures.picture(pictures[line]), label)
        second = "2nd" if truth[line] is None else "true"
        for column, (kind, explained, chosen) in enumerate((("top", of_predicted, ranked[line, 0]),
                                                           (second, of_compared, compared[line]))):
            probability = f"{explained.probabilities[line, chosen]:.2f}".replace("0.", ".")
            name = f"{kind} {classes.names[chosen][:5]} {probability}"
            grid.tile(line, 1 + column, heat_on(pictures[line], explained.maps[line]), name)
            grid.tile(line, 3 + column, gradient_picture(explained.guided[line]), f"guided {kind}")
    grid.caption(CAPTION)
    return grid.save(folder / f"gradcam_{row.name}.png")


def heat_on(image: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """A Grad-CAM map [H, W] (scaled to its own maximum) in the jet colours, half over the image [H, W, C]."""
    heat = matplotlib.colormaps["jet"](figures.rescaled(cam, 0.0, max(float(cam.max()), 1e-12)))[..., :3]
    gray = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
    return 0.5 * gray + 0.5 * heat
