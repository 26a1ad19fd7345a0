"""One card per weight (runner/weights/card.py): every source gives one, a saved model holds one, a
run's params come from it, and every app that uses a model takes published weights directly
(published weights come from a pre-filled hub cache: tests/hub_cache.py)."""

import json
import re
import shlex
import shutil
import zipfile

import keras
import mlflow
import pytest

from apps import run_app
from cards import tiny_card
from helpers import REPO, compose, new_store
from hub_cache import prefill_hub
from image_folders import make_image_folder
from reference_resnet import random_state_dict
from runner.architecture.tables import model_spec
from runner.data import pipeline, unreadable
from runner.mistakes.errors import UserError
from runner.session import parts as session_module
from runner.weights import families, published, saved
from runner.weights.card import WeightsCard
from runner.weights.reference import classifier_rows, with_classes
from runner.weights.table import markdown_table

import builders

SMALL_RESNET = ("model=resnet18", "model.input_shape=[64,64,3]", "trainer.batch_size=8")
RESNET18_HUB = "timm/resnet18.tv_in1k"


def runs_of(store: str) -> list:
    client = mlflow.MlflowClient(store)
    return client.search_runs([experiment.experiment_id for experiment in client.search_experiments()],
                              order_by=["attributes.start_time ASC"])


def test_a_card_survives_its_json_and_older_files_read_as_cards(tmp_path):
    card = published.published("vgg16").card
    assert WeightsCard.from_json(card.to_json()) == card
    assert card.num_classes == 1000 and card.ids[0] == "n01440764" and card.class_names[0] == "tench"
    # A model saved before cards: its classes.json is read as one.
    inputs = pipeline.Preprocessing((0.1, 0.2, 0.3), (0.5,) * 3, bgr=True)
    network = builders.build_model({"name": "tiny", "input_shape": [8, 8, 3],
                                    "blocks": [{"type": "flatten"}, {"type": "dense", "units": 2, "name": "fc"}]})
    path = tmp_path / "model.keras"
    saved.save(path, network, tiny_card(("a", "b"), inputs))
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist() if name != saved.CARD}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr(saved.OLD_METADATA, json.dumps({"class_names": ["a", "b"], "resize_ratio": 1.25,
                                                         "preprocessing": {"mean": [0.1, 0.2, 0.3],
                                                                           "std": [0.5, 0.5, 0.5], "bgr": True}}))
    old = saved.read_card(path)
    assert (old.class_names, old.preprocessing, old.resize_ratio) == (("a", "b"), inputs, 1.25)


def test_published_tags_name_one_of_several_weights():
    assert published.published("vgg16").card.layout == "keras_applications_vgg"  # the first: the default
    tagged = published.published("vgg16", "imagenet:tv_in1k")
    assert (tagged.hub, tagged.card.layout, tagged.card.reference) == ("timm/vgg16.tv_in1k", "torchvision_vgg",
                                                                       "imagenet:tv_in1k")
    with pytest.raises(UserError, match=r"^model.weights=imagenet:v2: vgg16 has no published weights tagged 'v2'; "
                                        r"valid: imagenet \(the first\) or imagenet:keras, imagenet:tv_in1k$"):
        published.published("vgg16", "imagenet:v2")


@pytest.mark.e2e
def test_a_run_from_another_runs_file_takes_that_runs_preprocessing_bgr_included(tmp_path):
    """File (Caffe-style card) -> run A -> A's model.keras file -> run B: B records A's inputs."""
    root = make_image_folder(tmp_path / "pets", classes=("cat", "dog"), per_class=4, size=(36, 40))
    lenet = ("model=lenet", "model.input_shape=[32,32,3]", "data=folder", f"data.root={root}",
             "data.num_classes=2", "trainer.epochs=1", "trainer.batch_size=4")
    caffe_file = tmp_path / "caffe_style.keras"
    network = builders.build_model(model_spec(compose(*lenet)))
    saved.save(caffe_file, network, tiny_card(("cat", "dog"), families.CAFFE, "lenet", classifier=("output",)))
    store = new_store(tmp_path)
    for name, weights in (("a", caffe_file), ("b", tmp_path / "a" / "model.keras")):
        result = run_app("runner", *lenet, f"model.weights={weights}", f"hydra.run.dir={tmp_path / name}",
                         env={"MLFLOW_TRACKING_URI": store})
        assert result.returncode == 0, result.stderr[-3000:]
    first, second = (run.data.params for run in runs_of(store))
    inputs = ("preprocessing.mean", "preprocessing.std", "preprocessing.channels")
    assert [second[key] for key in inputs] == [first[key] for key in inputs]
    assert first["preprocessing.channels"] == "BGR"
    assert (second["weights.kind"], second["weights.source"]) == ("file", str(tmp_path / "a" / "model.keras"))
    assert "weights.file" not in second  # a path that may be gone (a run's download) is no param
    assert saved.read_card(tmp_path / "b" / "model.keras").preprocessing == families.CAFFE


@pytest.fixture
def offline_resnet18(tmp_path, monkeypatch):
    """ImageNet's ResNet-18 as published, from huggingface_hub's cache with the network off."""
    environment = prefill_hub(tmp_path / "cache", RESNET18_HUB, random_state_dict(18))
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    return environment


@pytest.mark.e2e
def test_evaluate_published_weights_on_a_val_only_folder_builds_no_optimizer(tmp_path, offline_resnet18,
                                                                              monkeypatch):
    root = make_image_folder(tmp_path / "imagenette", per_class=1, size=(72, 80))
    shutil.rmtree(root / "train")  # how ImageNet's validation set is often kept: val/ alone
    monkeypatch.setattr(session_module, "make_optimizer", _refused)
    store = new_store(tmp_path)
    result = run_app("runner.evaluate", *SMALL_RESNET, "model.weights=imagenet", "data=imagenette",
                     f"data.root={root}", f"hydra.run.dir={tmp_path}/run", env={"MLFLOW_TRACKING_URI": store})
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = runs_of(store)
    metrics, params = run.data.metrics, run.data.params
    assert (metrics["published_top1"], metrics["published_top5"]) == pytest.approx((0.69758, 0.89078))
    assert 0 <= metrics["eval_top1"] <= metrics["eval_top5"] <= 1
    assert (params["weights.source"], params["weights.kind"]) == ("imagenet:tv_in1k", "published")
    assert "not comparable, only the data's classes were scored" in result.stdout


@pytest.mark.e2e
def test_evaluate_decodes_no_training_image(tmp_path, offline_resnet18, monkeypatch):
    root = make_image_folder(tmp_path / "imagenette", per_class=1, size=(72, 80))
    decoded = []
    real_find = unreadable.find
    monkeypatch.setattr(unreadable, "find",
                        lambda files, *args, **kwargs: decoded.extend(files) or real_find(files, *args, **kwargs))
    result = run_app("runner.evaluate", *SMALL_RESNET, "model.weights=imagenet", "data=imagenette",
                     f"data.root={root}", f"hydra.run.dir={tmp_path}/run",
                     env={"MLFLOW_TRACKING_URI": new_store(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert decoded and all("/val/" in file for file in decoded)


@pytest.mark.e2e
def test_predict_and_export_take_published_weights_with_their_classes(tmp_path, offline_resnet18):
    photos = make_image_folder(tmp_path / "photos", per_class=1, size=(72, 80)) / "val"
    result = run_app("runner.predict", *SMALL_RESNET, "model.weights=imagenet", f"predict.images={photos}",
                     "predict.top_k=1", f"predict.output={tmp_path / 'top.csv'}", f"hydra.run.dir={tmp_path}/p")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = (tmp_path / "top.csv").read_text().splitlines()
    assert len(lines) == 11 and all(line.split(",")[2] in families.imagenet_lemmas() for line in lines[1:])
    result = run_app("runner.export", *SMALL_RESNET, "model.weights=imagenet", "export.check_images=2",
                     f"export.output={tmp_path / 'export'}", f"hydra.run.dir={tmp_path}/e")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "export" / "saved_model" / "saved_model.pb").is_file()


def _damaged(tmp_path, kind: str):
    good = tmp_path / "good.keras"
    network = builders.build_model({"name": "tiny", "input_shape": [8, 8, 3],
                                    "blocks": [{"type": "flatten"}, {"type": "dense", "units": 2, "name": "fc"}]})
    # Its card says lenet, the visualizer's default model=, so the file is read, not refused for its card.
    saved.save(good, network, tiny_card(("a", "b"), pipeline.IMAGENET, "lenet", ("output",)))
    path = tmp_path / f"{kind}.keras"
    data = good.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "lambda":  # a layer whose Python function Keras's safe mode will not run
        inputs = keras.Input((8, 8, 3))
        doubled = keras.layers.Lambda(lambda x: x * 2)(inputs)
        keras.Model(inputs, keras.layers.Dense(2, name="fc")(keras.layers.Flatten()(doubled))).save(path)
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(saved.CARD, saved.read_card(good).to_json())
    elif kind == "foreign":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "not a model")
    else:  # a zip whose weights member is garbage: the directory intact, the contents not
        with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w") as archive:
            for name in source.namelist():
                member = source.read(name)
                archive.writestr(name, member if name != "model.weights.h5" else b"\0" * len(member))
    return path


DAMAGE_SAID = {
    "truncated": ": {path} is not a Keras model file (a .keras file is a zip archive; this is not one, or it was "
                 "cut short)",
    "foreign": ": {path} is a zip archive but not a Keras model (no config.json, model.weights.h5)",
    "garbled": ": {path} is a damaged Keras model file (",
    "lambda": ": {path} holds Python code (a Lambda layer), which Keras's safe mode refuses to load",
}
# visualize draws a file's weights on model=, read by layer name, whose reader says so of a garbled file
GARBLED_WEIGHTS = "error: weights file {path} is not a model saved by Keras 3 ("


@pytest.mark.parametrize("kind", DAMAGE_SAID)
@pytest.mark.parametrize("app", ["predict", "export", "visualize"])
def test_a_damaged_model_file_is_one_line_in_every_app(tmp_path, kind, app):
    path = _damaged(tmp_path, kind)
    images = make_image_folder(tmp_path / "images", classes=("a",), per_class=1)
    extra = [f"predict.images={images}"] if app == "predict" else []
    result = run_app(f"runner.{app}", f"{app}.model={path}", *extra, f"hydra.run.dir={tmp_path}/run",
                     env={"MLFLOW_TRACKING_URI": new_store(tmp_path)})
    assert result.returncode == 2, result.stderr[-3000:]
    [line] = result.stderr.strip().splitlines()
    if app == "visualize" and kind == "garbled":
        assert line.startswith(GARBLED_WEIGHTS.format(path=path)), line
    elif app == "visualize" and kind == "lambda":  # read as weights, by layer name: the Lambda is never built
        assert line.startswith("error: source tensors fc/0 (192, 2), fc/1 (2,) match no row"), line
    else:
        assert line.startswith(f"error: {app}.model" + DAMAGE_SAID[kind].format(path=path)), line


def _refused(*args, **kwargs):
    raise AssertionError("evaluation built an optimizer")


def test_a_published_card_names_its_classifier_rows_in_the_zoo():
    """The card's classifier rows are rows of the zoo's files, so a new head replaces exactly them."""
    for model, entries in published.published_weights().items():
        rows = {row.get("name") for row in compose(f"model={model}").model.blocks}
        for entry in entries.values():
            assert set(entry.card.classifier) <= rows, (model, entry.card.classifier)


def test_the_docs_weights_table_is_made_from_the_cards():
    page = (REPO / "docs" / "weights.md").read_text()
    assert markdown_table() in page, "paste `python -m runner.weights.table` into docs/weights.md's table"


def test_googlenets_classifier_rows_are_its_last_row_then_its_auxiliary_heads():
    cfg = compose("model=googlenet", "data=imagenette", "model.input_shape=[96,96,3]")
    built = builders.build(model_spec(cfg))
    assert classifier_rows(cfg, built) == ("classifier", "aux1", "aux2")
    assert classifier_rows(with_classes(cfg, 1000), built) == ()  # sized: no row says ${data.num_classes}


@pytest.mark.e2e
def test_several_evaluations_are_one_multirun_that_compare_tabulates_beside_the_published(tmp_path, offline_resnet18):
    root = make_image_folder(tmp_path / "imagenette", per_class=1, size=(72, 80))
    store = new_store(tmp_path)
    result = run_app("runner.evaluate", "-m", *SMALL_RESNET, "model.weights=imagenet,imagenet:tv_in1k",
                     "data=imagenette", f"data.root={root}", f"hydra.sweep.dir={tmp_path}/sweep",
                     env={"MLFLOW_TRACKING_URI": store})
    assert result.returncode == 0, result.stderr[-3000:]
    result = run_app("runner.compare", f"hydra.run.dir={tmp_path}/compare", env={"MLFLOW_TRACKING_URI": store})
    assert result.returncode == 0, result.stderr[-3000:]
    header = next(line for line in result.stdout.splitlines() if line.startswith("run "))
    assert "published top-1" in header
    assert result.stdout.count("69.76%") == 2  # each job's publisher figure, beside its own top-1


def test_a_damaged_or_newer_card_is_one_line_or_read_for_what_it_knows(tmp_path):
    path = tmp_path / "model.keras"
    network = builders.build_model({"name": "tiny", "input_shape": [8, 8, 3],
                                    "blocks": [{"type": "flatten"}, {"type": "dense", "units": 2, "name": "fc"}]})
    card = tiny_card(("a", "b"), pipeline.IMAGENET)
    newer = json.loads(card.to_json())
    newer["future_field"] = 1
    newer["preprocessing"]["future_field"] = 2
    for text, expected in ((json.dumps(newer), card), ("{not json", None), ('{"kind": "file"}', None)):
        saved.save(path, network, card)
        with zipfile.ZipFile(path) as archive:
            members = {name: archive.read(name) for name in archive.namelist() if name != saved.CARD}
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
            archive.writestr(saved.CARD, text)
        if expected is not None:
            assert saved.read_card(path) == expected
        else:
            with pytest.raises(UserError, match=f"^{path}: its card.json cannot be read "):
                saved.read_card(path)


def test_predict_with_weights_takes_the_cards_preprocessing_without_a_word_about_the_data(tmp_path):
    file = tmp_path / "caffe_style.keras"
    network = builders.build_model(model_spec(compose("model=lenet", "model.input_shape=[32,32,3]")))
    saved.save(file, network, tiny_card(("cat", "dog"), families.CAFFE, "lenet", classifier=("output",)))
    photos = make_image_folder(tmp_path / "photos", classes=("cat",), per_class=1) / "val"
    result = run_app("runner.predict", "model.input_shape=[32,32,3]", f"model.weights={file}",
                     f"predict.images={photos}", f"hydra.run.dir={tmp_path}/p")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "differ from what" not in result.stderr  # the composed default data= (digits') is no one's choice
    assert "cat" in result.stdout and "dog" in result.stdout


def test_evaluate_refuses_weights_whose_classes_are_not_the_datas(tmp_path):
    root = make_image_folder(tmp_path / "pets", classes=("cat", "dog"), per_class=2, size=(36, 40))
    file = tmp_path / "other_two.keras"
    network = builders.build_model(model_spec(compose("model=lenet", "model.input_shape=[32,32,3]",
                                                      "data.num_classes=2")))
    saved.save(file, network, tiny_card(("car", "bus"), pipeline.IMAGENET, "lenet", classifier=("output",)))
    result = run_app("runner.evaluate", "model.input_shape=[32,32,3]", f"model.weights={file}", "data=folder",
                     f"data.root={root}", "data.num_classes=2", f"hydra.run.dir={tmp_path}/run",
                     env={"MLFLOW_TRACKING_URI": new_store(tmp_path)})
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip() == (f"error: model.weights={file} predicts 2 classes and data's 2 are not all among "
                                     "them ('cat' is not; 'car' is): fine-tune first (python -m runner "
                                     "model.weights=...), then evaluate that run")


# The config each documented command composes; predict and export set data's statistics aside themselves.
APP_CONFIGS = {"runner": "config", "runner.evaluate": "config", "runner.visualize": "visualize"}


def documented_commands() -> list[list[str]]:
    """Every `python -m runner...` command of the README's and the docs' code blocks, as its arguments."""
    commands = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for block in page.read_text().split("```")[1::2]:  # the fenced blocks
            for line in block.replace("\\\n", " ").splitlines():
                command = re.match(r"^(?:.* && )?\s*(python -m runner.*)", line)  # a command, not a mention
                if command:
                    commands.append(shlex.split(command.group(1), comments=True)[2:])
    return commands


def test_the_documented_commands_with_weights_take_the_weights_preprocessing():
    """An example that starts from published weights or a file leaves data.mean and data.std unset, so
    the weights' card says the preprocessing and no warning says they disagree. (A run's weights,
    runs:/<run_id>, agree with the data of that run, which the example's comment names.)"""
    checked = 0
    for app, *overrides in documented_commands():
        weights = [word for word in overrides if word.startswith("model.weights=")]
        if app not in APP_CONFIGS or not weights or "runs:/" in weights[0]:
            continue
        chosen = [word.split(",")[0] if word.split("=")[0] in ("model", "data") else word
                  for word in overrides if word != "-m"]
        data = compose(*chosen, app=APP_CONFIGS[app]).data
        assert (data.mean, data.std) == (None, None), f"python -m {app} {' '.join(overrides)} sets data's statistics"
        checked += 1
    assert checked >= 5
