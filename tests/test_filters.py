"""First-layer filters a person can read (runner/visualize/filters.py), and ZFNet's lesson as a sweep:
experiment=zfnet_vs_alexnet draws both nets' first layers on the parent run."""

import pathlib
import tempfile

import keras
import matplotlib
import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image
from sweeps import assert_finished_with_metrics, run_sweep, sweep_runs

from runner import sweep
from runner.data.pipeline import Preprocessing
from runner.schema import SweepConfig
from runner.visualize import figures, filters
from runner.weights import saved

QUICK = ("data=synthetic", "trainer.epochs=1", "data.train_size=8", "data.val_size=8", "trainer.batch_size=8",
         "trainer.jit_compile=false")


def conv_model(name: str, kernel: np.ndarray, strides: int = 1) -> keras.Model:
    """A one-layer net whose Conv2D holds `kernel` [kh, kw, in, out]."""
    image = keras.Input((32, 32, kernel.shape[2]))
    conv = keras.layers.Conv2D(kernel.shape[-1], kernel.shape[:2], strides=strides, name="conv1")
    model = keras.Model(image, conv(image), name=name)
    conv.set_weights([kernel, np.zeros(kernel.shape[-1], np.float32)])
    return model


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255


def tile_centre(png: np.ndarray, index: int, count: int, kernel_side: int) -> np.ndarray:
    """The middle half of filter `index`'s tile, [pixels, 3], where figures.Grid puts it."""
    columns = figures.square_layout(count)[1]
    side = filters.tile_size(count, kernel_side, kernel_side)
    line, column = divmod(index, columns)
    top = figures.TITLE + line * (figures.LABEL + side + figures.PAD) + figures.LABEL
    left = figures.PAD + column * (side + figures.PAD)
    return png[top + side // 4 : top + 3 * side // 4, left + side // 4 : left + 3 * side // 4].reshape(-1, 3)


def test_the_size_formula_by_hand():
    # 6 filters 5x5: 3 columns; ceil(796 / 3) - 4 = 262, up to a multiple of 5: 265-pixel tiles.
    assert filters.tile_size(6, 5, 5) == 265
    assert filters.panel_size(6, 5, 5) == (4 + 3 * (265 + 4), 24 + 2 * (12 + 265 + 4) + 4 + 32)
    # 96 filters 11x11: 10 columns; ceil(796 / 10) - 4 = 76, up to 77 = 11 x 7: each weight 7x7 pixels.
    assert filters.panel_size(96, 11, 11) == (4 + 10 * (77 + 4), 24 + 10 * (12 + 77 + 4) + 4 + 32)
    assert filters.compared_size([(96, 11, 11), (6, 5, 5)]) == (814 + 811, 24 + 990)


@pytest.mark.parametrize("count, side, depth", [(6, 5, 1), (96, 11, 3)])
def test_a_panel_is_as_the_formula_says_and_at_least_800_wide(tmp_path, count, side, depth):
    kernel = np.random.default_rng(0).normal(size=(side, side, depth, count)).astype(np.float32)
    path = filters.model_filters(conv_model("net", kernel), tmp_path / "filters.png")
    assert Image.open(path).size == filters.panel_size(count, side, side)
    assert filters.panel_size(count, side, side)[0] >= 800


@pytest.mark.parametrize("depth", [3, 16])
def test_one_colour_scale_for_the_panel_zero_is_grey_and_twice_the_weights_draw_twice_as_strong(tmp_path, depth):
    pattern = np.random.default_rng(1).uniform(-1, 1, size=(5, 5, depth)).astype(np.float32)
    kernel = np.stack([np.zeros_like(pattern), pattern, 2 * pattern], axis=-1)  # dead, weak, strong
    png = pixels(filters.model_filters(conv_model("net", kernel), tmp_path / "filters.png"))
    grey = np.full(3, 0.5) if depth == 3 else np.asarray(matplotlib.colormaps[filters.DIVERGING](0.5)[:3])
    dead, weak, strong = (tile_centre(png, index, 3, 5) for index in range(3))
    np.testing.assert_allclose(dead, np.broadcast_to(grey, dead.shape), atol=1.5 / 255)
    # Each filter stretched to its own range would draw the weak and the strong one alike.
    weak_contrast, strong_contrast = (np.abs(tile - grey).mean() for tile in (weak, strong))
    assert strong_contrast > 1.3 * weak_contrast > 0.02
    if depth == 3:  # each channel linear from -m (0) to +m (1): exactly twice as far from grey
        assert strong_contrast == pytest.approx(2 * weak_contrast, rel=0.03)


def test_the_colour_bar_runs_from_minus_m_to_plus_m_through_grey(tmp_path):
    kernel = np.random.default_rng(2).normal(size=(5, 5, 3, 6)).astype(np.float32)
    png = pixels(filters.model_filters(conv_model("net", kernel), tmp_path / "filters.png"))
    bar = png[png.shape[0] - filters.FOOTER + filters.BAR // 2, figures.PAD : png.shape[1] - figures.PAD]
    np.testing.assert_allclose(bar[[0, len(bar) // 2, -1]], [[0] * 3, [0.5] * 3, [1] * 3], atol=3 / 255)


def test_first_conv_is_the_networks_not_the_saved_models_bgr_preprocessing():
    network = conv_model("caffe_net", np.ones((5, 5, 3, 4), np.float32), strides=2)
    standalone = saved.standalone(network, saved.Metadata(["a"], Preprocessing((0.5,) * 3, (0.25,) * 3, bgr=True), 1.0))
    assert any(layer.name == f"{saved.PREFIX}bgr" for layer in standalone.layers)
    conv = filters.first_conv(standalone)
    assert conv.name == "conv1"
    assert filters.Filters.of(conv).describe() == "conv1: 4 filters 5x5x3, stride 2"


@pytest.mark.slow
def test_zfnet_vs_alexnet_draws_both_first_layers_on_the_parent(tmp_path, capsys):
    # 67 px: the least AlexNet's pool5 takes (11x11/4 -> 15 -> pool 7 -> pool 3 -> pool5 1); ZFNet's pool5 gives 1 too.
    result = run_sweep(tmp_path, "experiment=zfnet_vs_alexnet", "model.input_shape=[67,67,3]", *QUICK,
                       multirun=False)  # the experiment makes it a multirun
    assert result.returncode == 0, result.stderr[-3000:]
    client, parent, children = sweep_runs(tmp_path)
    assert parent.info.status == "FINISHED"
    assert {child.data.tags["model"] for child in children} == {"alexnet", "zfnet"}
    assert_finished_with_metrics(client, children, epochs=1)
    with tempfile.TemporaryDirectory() as downloads:
        png = client.download_artifacts(parent.info.run_id, "first_layer_filters.png", downloads)
        assert Image.open(png).size == filters.compared_size([(96, 11, 11), (96, 7, 7)])  # AlexNet first
    # A job whose model is gone is left out with a note, and the others are still drawn.
    alexnet = next(child for child in children if child.data.tags["model"] == "alexnet")
    (pathlib.Path(alexnet.data.tags["hydra.output_dir"]) / "model.keras").unlink()
    (tmp_path / "again").mkdir()
    sweep._log_first_layer_filters(client, parent.info.run_id, children,
                                   OmegaConf.structured(SweepConfig(first_layer_filters=True)), str(tmp_path / "again"))
    assert f"first_layer_filters: {alexnet.info.run_name} skipped: run {alexnet.info.run_id} has no model.keras" \
           in capsys.readouterr().out
    assert Image.open(tmp_path / "again" / "first_layer_filters.png").size == filters.compared_size([(96, 7, 7)])

