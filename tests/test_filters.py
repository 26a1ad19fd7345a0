"""First-layer filters a person can read (runner/visualize/filters.py), and ZFNet's lesson as a sweep:
experiment=zfnet_vs_alexnet draws both nets' first layers on the parent run (the nets themselves
train traced in experiment=classics, test_experiments.py)."""

import pathlib
import tempfile

import hydra
import keras
import matplotlib
import numpy as np
import pytest
import mlflow
from omegaconf import OmegaConf
from PIL import Image

from helpers import CONF, new_store

from runner import sweep
from runner.config.schema import SweepConfig
from runner.data.pipeline import Preprocessing
from runner.visualize import figures, filters
from runner.weights import saved

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
    standalone = saved.standalone(network, Preprocessing((0.5,) * 3, (0.25,) * 3, bgr=True))
    assert any(layer.name == f"{saved.PREFIX}bgr" for layer in standalone.layers)
    conv = filters.first_conv(standalone)
    assert conv.name == "conv1"
    assert filters.Filters.of(conv).describe() == "conv1: 4 filters 5x5x3, stride 2"


def test_zfnet_vs_alexnet_is_one_sweep_of_both_nets_with_one_recipe():
    with hydra.initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = hydra.compose("config", overrides=["experiment=zfnet_vs_alexnet"], return_hydra_config=True)
    assert cfg.hydra.sweeper.params == {"model": "alexnet,zfnet"}
    assert cfg.sweep.first_layer_filters and cfg.data.name == "imagenette"
    # The recipe is the experiment's, so both jobs share it (their input sizes are their papers').
    assert (cfg.optimizer.lr, cfg.optimizer.momentum, cfg.optimizer.weight_decay) == (0.01, 0.9, 0.0005)
    assert (cfg.schedule.name, cfg.trainer.epochs, cfg.trainer.batch_size) == ("plateau", 30, 64)


def finished_job(client, experiment, folder: pathlib.Path, name: str, kernel: np.ndarray, strides: int,
                 top1: float):
    """A FINISHED job of a sweep in a real store, its model.keras in its run folder as training leaves it."""
    folder.mkdir(parents=True)
    conv_model(name, kernel, strides).save(folder / "model.keras")
    run = client.create_run(experiment, tags={"model": name, "hydra.output_dir": str(folder)}, run_name=f"{name}-job")
    client.log_metric(run.info.run_id, "eval_top1", top1)
    client.set_terminated(run.info.run_id, "FINISHED")
    return client.get_run(run.info.run_id)


def test_the_sweeps_parent_gets_every_finished_jobs_first_layer(tmp_path, capsys):
    """AlexNet's 96 11x11/4 beside ZFNet's 96 7x7/2, from the jobs' saved models; a job whose model
    is gone or damaged is left out with a note, and the others are still drawn."""
    client = mlflow.MlflowClient(new_store(tmp_path))
    experiment = client.create_experiment("zf", artifact_location=(tmp_path / "artifacts").as_uri())
    parent = client.create_run(experiment).info.run_id
    rng = np.random.default_rng(3)
    alexnet = finished_job(client, experiment, tmp_path / "alexnet", "alexnet",
                           rng.normal(size=(11, 11, 3, 96)).astype(np.float32), 4, 0.41)
    zfnet = finished_job(client, experiment, tmp_path / "zfnet", "zfnet",
                         rng.normal(size=(7, 7, 3, 96)).astype(np.float32), 2, 0.47)
    options = OmegaConf.structured(SweepConfig(first_layer_filters=True))
    sweep._log_first_layer_filters(client, parent, [alexnet, zfnet], options, str(tmp_path / "sweep"))
    with tempfile.TemporaryDirectory() as downloads:
        png = client.download_artifacts(parent, "first_layer_filters.png", downloads)
        assert Image.open(png).size == filters.compared_size([(96, 11, 11), (96, 7, 7)])  # in the jobs' order

    (tmp_path / "alexnet" / "model.keras").write_bytes(b"cut short")
    (tmp_path / "zfnet" / "model.keras").unlink()
    sweep._log_first_layer_filters(client, parent, [alexnet, zfnet], options, str(tmp_path / "again"))
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith("first_layer_filters: alexnet-job skipped: ")
    assert said[1] == (f"first_layer_filters: zfnet-job skipped: run {zfnet.info.run_id} has no model.keras "
                       f"artifact nor at {tmp_path / 'zfnet' / 'model.keras'}: train with tracking.log_model=true, "
                       "or run this on the machine that trained it")
    assert said[2] == "first_layer_filters: no finished job left a model, so there are no filters to draw"
