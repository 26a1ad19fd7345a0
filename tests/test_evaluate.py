"""`python -m runner.evaluate`: weights evaluated without training, recorded as a run of their own
(a previous run's weights: tests/test_from_a_run.py)."""

import mlflow
import pytest
from safetensors.numpy import save_file

from apps import run_app
from helpers import new_store
from image_folders import make_image_folder
from reference_resnet import random_state_dict

pytestmark = pytest.mark.e2e  # every test here: the whole evaluate app over image folders

SMALL_RESNET = ("model=resnet18", "model.input_shape=[64,64,3]", "trainer.batch_size=8")


def app(name, tmp_path, *overrides):
    store = new_store(tmp_path)
    result = run_app(name, f"hydra.run.dir={tmp_path}/{name}-run", *overrides, env={"MLFLOW_TRACKING_URI": store})
    return result, mlflow.MlflowClient(store)


def runs_by_role(client):
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return {run.data.tags.get("runner.role", "train"): run for run in runs}


def test_imagenet_weights_score_an_imagenette_folder_on_its_synsets_logits(tmp_path):
    root = make_image_folder(tmp_path / "imagenette", per_class=1, size=(72, 80))
    weights = tmp_path / "resnet18.safetensors"
    save_file(random_state_dict(18), str(weights))
    result, client = app("runner.evaluate", tmp_path, *SMALL_RESNET, f"model.weights={weights}",
                         "data=imagenette", f"data.root={root}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "/batch" in result.stdout  # Keras's progress bar over the pass
    evaluation = runs_by_role(client)["evaluate"]
    assert 0 <= evaluation.data.metrics["eval_top1"] <= evaluation.data.metrics["eval_top5"] <= 1
    assert evaluation.data.params["preprocessing.std"] == "[0.229, 0.224, 0.225]"  # torchvision's
    text = open(client.download_artifacts(evaluation.info.run_id, "weights.txt", str(tmp_path))).read()
    assert "fresh (initialised here, not loaded): 0" in text  # the 1000-way classifier is ImageNet's own


def test_imagenet_weights_on_classes_that_are_not_synsets_is_one_line(tmp_path):
    root = make_image_folder(tmp_path / "pets", classes=("cat", "dog"), per_class=4)
    weights = tmp_path / "resnet18.safetensors"
    save_file(random_state_dict(18), str(weights))
    result, client = app("runner.evaluate", tmp_path, *SMALL_RESNET, f"model.weights={weights}",
                         "data=folder", f"data.root={root}", "data.num_classes=2")
    assert result.returncode == 2
    assert "predicts 1000 classes and data's 2 are not all among them ('cat' is not; 'n01440764' is)" in result.stderr
    assert not runs_by_role(client)


def test_evaluate_without_weights_is_one_line(tmp_path):
    result, _ = app("runner.evaluate", tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: model.weights is not set: give imagenet, runs:/<run_id> or a "
                                     "weights file to evaluate")
