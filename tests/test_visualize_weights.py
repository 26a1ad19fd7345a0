"""`python -m runner.visualize model=<name> model.weights=<published or a file> data=<folder>`:
weights' figures on images of one's own, recorded as a new MLflow run (ImageNet weights here are a
file in torchvision's layout: the published ones cannot be downloaded in the tests)."""

import pathlib

import hydra
import keras
import mlflow
import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import save_file

from apps import run_app
from helpers import CONF, new_store, png_size
from image_folders import make_image_folder
from reference_resnet import random_state_dict
from runner.data import pipeline
from runner.mistakes.errors import UserError
from runner.visualize import figure2, figures, filters
from runner.visualize.visualization import seen_in_rgb, visualize_model
from runner.weights.families import CAFFE

FIGURES = ("visualize.images=2", "visualize.channels=2", "visualize.top_k=3", "visualize.patches=4",
           "visualize.rows=[conv1]", "visualize.top_row=conv3_block1")


@pytest.mark.e2e
def test_published_weights_are_drawn_on_a_folder_and_recorded_as_a_run_of_their_own(tmp_path):
    root = make_image_folder(tmp_path / "pets", classes=("cat", "dog"), per_class=3, size=(72, 80))
    weights = tmp_path / "resnet18.safetensors"
    save_file(random_state_dict(18), str(weights))
    store = new_store(tmp_path)
    result = run_app("runner.visualize", "model=resnet18", "model.input_shape=[64,64,3]", f"model.weights={weights}",
                     "data=folder", f"data.root={root}", "data.num_classes=2", *FIGURES,
                     f"hydra.run.dir={tmp_path / 'out'}", env={"MLFLOW_TRACKING_URI": store})
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.MlflowClient(store)
    (run,) = client.search_runs([experiment.experiment_id for experiment in client.search_experiments()])
    assert run.info.status == "FINISHED" and run.data.tags["runner.role"] == "visualize"
    assert run.data.params["model.weights"] == str(weights)
    assert f"logged on MLflow run {run.info.run_id}" in result.stdout
    # 6 validation images: the feature maps and projections show 2, Figure 2 takes 4 of the 6.
    expected = {"filters.png": filters.panel_size(64, 7, 7),
                "feature_maps_conv1.png": figures.grid_size(2, 1 + 16),
                "top_images_conv3_block1.png": figures.grid_size(2, 3),
                "projections_conv3_block1.png": figures.grid_size(2, 4),
                "figure2_conv3_block1.png": figures.grid_size(2, 2 * 4, figure2.TILE),
                "gradcam_conv5_block2.png": figures.grid_size(2, 5, footer=figures.CAPTION),
                "occlusion.png": figures.grid_size(2, 3, footer=figures.CAPTION)}
    logged = {artifact.path for artifact in client.list_artifacts(run.info.run_id, "visualize")}
    assert logged == {f"visualize/{name}" for name in expected}
    for name, size in expected.items():
        assert png_size(tmp_path / "out" / name) == size, name
    text = pathlib.Path(client.download_artifacts(run.info.run_id, "weights.txt", str(tmp_path))).read_text()
    assert "fresh (initialised here, not loaded): 0" in text  # ImageNet's whole network, its classifier too


def test_a_model_that_is_no_run_reference_is_one_line(tmp_path):
    result = run_app("runner.visualize", "visualize.model=model.keras", f"hydra.run.dir={tmp_path}",
                     env={"MLFLOW_TRACKING_URI": new_store(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: visualize.model=model.keras: give runs:/<run_id> of a training run "
                                     "or a model.keras file, or leave it unset and set model.weights (imagenet "
                                     "or a file) with model= and data=")


@pytest.mark.parametrize(("overrides", "said"), [
    (["visualize.model=runs:/"], "visualize.model=runs:/: give runs:/<run_id> of a training run or a "),
    (["visualize.model=runs:/abc", "model.weights=imagenet"],
     "visualize.model=runs:/abc and model.weights=imagenet: give one; a run is drawn with its own model"),
    (["model=vgg16"], ("model=vgg16: a training run is drawn with the model and data of its own config; "
                       "to draw weights on model= and data=, set model.weights (imagenet or a file)")),
    (["+data.root=/x"], "+data.root=/x: a training run is drawn with the model and data of its own config"),
])
def test_what_cannot_be_drawn_is_refused_before_anything_is_read(tmp_path, overrides, said):
    with hydra.initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = hydra.compose("visualize", overrides=[*overrides, f"tracking.uri=sqlite:///{tmp_path}/none.db"])
    with pytest.raises(UserError) as refused:
        visualize_model(cfg, tmp_path, overrides)
    assert str(refused.value).startswith(said)


def test_bgr_weights_are_drawn_in_the_images_colours_computing_the_same():
    """Caffe's weights take BGR: drawn as they are, their filters and gradients would swap red and blue."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="c1_conv")(inputs)
    network = keras.Model(inputs, keras.layers.Dense(2, name="fc")(keras.layers.Flatten()(x)), name="tiny")
    images = tf.constant(np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)), tf.uint8)
    as_trained = pipeline.normaliser(CAFFE, 3)
    rgb, normalise = seen_in_rgb(network, CAFFE, as_trained)
    np.testing.assert_allclose(rgb(normalise(images)), network(as_trained(images)), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(rgb.get_layer("c1_conv").kernel.numpy(),
                                  network.get_layer("c1_conv").kernel.numpy()[:, :, ::-1, :])
    assert seen_in_rgb(network, pipeline.IMAGENET, as_trained) == (network, as_trained)  # RGB weights: as they are
