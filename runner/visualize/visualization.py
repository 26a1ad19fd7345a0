"""One visualisation: a model and validation images in; figures out, logged in MLflow.

Two sources of a model: a training run (visualize.model=runs:/<id>, else the latest finished one),
whose config says its data and whose run receives the figures; or weights (model.weights=imagenet,
a file, or visualize.model=<a model.keras file>) on the composed model= and data=, recorded as a new
run of their own. Either way only the validation split is read.
"""

import dataclasses
import pathlib
import tempfile
from collections.abc import Callable, Mapping, Sequence

import keras
from omegaconf import DictConfig

import builders  # noqa: F401  (registers its layers, LRN and the padded pools, which saved models use)
from runner.architecture.tables import model_spec
from runner.config.bounds import check_bounds
from runner.config.schema import VisualizeConfig
from runner.data import pipeline
from runner.data.pipeline import Preprocessing
from runner.data.splits import Splits, load
from runner.mistakes.errors import UserError
from runner.session.parts import load_splits, prepare_model
from runner.tracking.artifacts import RUNS_PREFIX, run_config, run_id_of
from runner.tracking.labels import ROLE_TAG, VISUALIZE_ROLE
from runner.tracking.run import Run
from runner.tracking.server import check_store
from runner.tracking.store import store_uri
from runner.training.record import record_weights
from runner.visualize.classes import Classes
from runner.visualize.filters import first_conv
from runner.visualize.occlusion import check_fractions
from runner.visualize.render import Options, chosen_rows, visualize
from runner.visualize.stored_runs import announced, find_run, log_figures, open_store
from runner.weights import saved
from runner.weights.card import WeightsCard
from runner.weights.reference import run_model

ARTIFACT_FOLDER = "visualize"


@dataclasses.dataclass
class Visualization:
    run_id: str  # the MLflow run the figures are logged on
    paths: list[pathlib.Path]  # the PNGs written
    notes: list[str]  # what the user should know about them (e.g. activations guided besides ReLU)

    @property
    def artifacts(self) -> list[str]:
        return [f"{ARTIFACT_FOLDER}/{path.name}" for path in self.paths]


def visualize_model(cfg: DictConfig, folder: pathlib.Path, overrides: Sequence[str] = ()) -> Visualization:
    """The figures `cfg` (the whole visualize app's config) asks for, written into `folder` and logged.
    `overrides`: the command line's (Hydra's task overrides), which must not set model= or data= for
    a training run, whose config says both."""
    check_bounds(cfg.visualize, VisualizeConfig, "visualize")
    check_fractions(cfg.visualize)
    if cfg.visualize.model and not cfg.visualize.model.startswith(RUNS_PREFIX):
        cfg = _file_as_weights(cfg)
    if cfg.visualize.model and cfg.model.weights:
        raise UserError(f"visualize.model={cfg.visualize.model} and model.weights={cfg.model.weights}: give one; "
                        "a run is drawn with its own model and data, weights on model= and data=")
    if cfg.model.weights:
        return _of_weights(cfg, folder)
    composed = [override for override in overrides if _group(override) in ("model", "data")]
    if composed:
        raise UserError(f"{composed[0]}: a training run is drawn with the model and data of its own config; "
                        "to draw weights on model= and data=, set model.weights (imagenet or a file)")
    return _of_training_run(cfg, folder)


def _of_training_run(cfg: DictConfig, folder: pathlib.Path) -> Visualization:
    run_id = _run_id(cfg.visualize.model)  # a malformed reference, before the store
    client = open_store(store_uri(cfg))
    run = find_run(client, run_id)
    print(announced(run), flush=True)
    train_cfg = run_config(client, run)
    with tempfile.TemporaryDirectory(prefix="visualize-") as downloads:
        source = run_model(client, run, pathlib.Path(downloads))
        model = saved.network(saved.load(source.path, "visualize.model"))
    spec = model_spec(train_cfg)
    chosen_rows(model, spec, Options.of(cfg.visualize))  # a wrong row name fails now, not after the data's file check
    train_cfg.data.cache = False  # one pass over the validation images
    splits = load(train_cfg, preprocessing=source.card.preprocessing, splits=("val",))
    paths, notes = _drawn(model, spec, splits, source.card.preprocessing, cfg.visualize, folder, None)
    log_figures(client, run.info.run_id, paths)
    return Visualization(run.info.run_id, paths, notes)


def _of_weights(cfg: DictConfig, folder: pathlib.Path) -> Visualization:
    """model.weights on model= and data='s validation images; a new run (runner.role=visualize) records them."""
    check_store(cfg)  # a tracking server that does not answer: one line now, not after the figures
    cfg = cfg.copy()
    cfg.data.cache = False
    cfg.trainer.batch_size = cfg.visualize.batch_size
    # The weights' own classifier (ImageNet's 1000 classes, say), whatever data= holds: the figures need none of it.
    part = prepare_model(cfg, for_training=False, classes_from_weights=True)
    splits = load_splits(part, ("val",))
    paths, notes = _drawn(part.model, model_spec(part.cfg), splits, part.preprocessing, cfg.visualize, folder,
                          _classes(part.model, part.card, splits.class_names))
    with Run(cfg) as run:
        run.set_tags({ROLE_TAG: VISUALIZE_ROLE})
        run.log_params(part.recorded_params())
        record_weights(run, part)
        for path in paths:
            run.log_artifact(path, ARTIFACT_FOLDER)
    return Visualization(run.run_id, paths, notes)


def _drawn(model: keras.Model, spec: Mapping, splits: Splits, preprocessing: Preprocessing | None,
           options: DictConfig, folder: pathlib.Path, classes: Classes | None) -> tuple[list[pathlib.Path], list[str]]:
    """The figures of `model` on the validation split, in batches of visualize.batch_size (training's
    can be large for a forward pass); their paths and notes. `classes`: the classifier's; None: the data's."""
    batches = splits.val.unbatch().batch(options.batch_size)
    model, normalise = seen_in_rgb(model, preprocessing, splits.normalise)
    return visualize(model, spec, batches, splits.class_names, normalise, Options.of(options), folder, classes)


def _classes(model: keras.Model, card: WeightsCard | None, data_classes: Sequence[str]) -> Classes:
    """The weights' classes as their card names them, else (none named) the data's."""
    count = keras.tree.flatten(model.outputs)[0].shape[-1]
    if card is not None and card.class_names is not None:
        return Classes.of(count, card.class_names, card.class_ids)
    return Classes.of(count, data_classes)


def seen_in_rgb(network: keras.Model, preprocessing: Preprocessing | None,
                normalise: Callable) -> tuple[keras.Model, Callable]:
    """A network trained on BGR images (Caffe's weights) as one that takes RGB, so its filters, gradients
    and projections are drawn in the colours of the images: a copy whose first convolution's kernel has
    its input channels reversed computes the same on RGB, normalised without the flip. Others as they are."""
    channels = network.input_shape[-1]
    if preprocessing is None or not preprocessing.bgr or channels != 3:
        return network, normalise
    rgb = keras.models.clone_model(network)
    rgb.set_weights(network.get_weights())
    first = first_conv(rgb)
    kernel, *rest = first.get_weights()
    first.set_weights([kernel[:, :, ::-1, :], *rest])
    return rgb, pipeline.normaliser(dataclasses.replace(preprocessing, bgr=False), channels)


def _file_as_weights(cfg: DictConfig) -> DictConfig:
    """visualize.model=<a model.keras file>: its weights on model= and data=, as model.weights=<file>;
    the file's card says which architecture it holds, which model= must be."""
    path = pathlib.Path(cfg.visualize.model).expanduser()
    if cfg.model.weights or not path.is_file():
        return cfg  # both given (one line below), or a malformed reference (one line, before the store)
    saved.check_archive(path, "visualize.model")  # one line naming the key given, before the weights' reader
    card = saved.read_card(path)
    if card and card.architecture and card.architecture != cfg.model.name:
        raise UserError(f"visualize.model={path} holds {card.architecture}, not model={cfg.model.name}: "
                        f"add model={card.architecture} (and its data=)")
    cfg = cfg.copy()
    cfg.model.weights, cfg.visualize.model = str(path), None
    return cfg


def _group(override: str) -> str:
    """The config group or node an override sets: "model" for model=vgg16, +model.freeze=x or ~data.root."""
    return override.split("=", 1)[0].lstrip("+~").split(".", 1)[0]


def _run_id(reference: str | None) -> str | None:
    if reference is None:
        return None
    run_id = run_id_of(reference)
    if not reference.startswith(RUNS_PREFIX) or not run_id:
        raise UserError(f"visualize.model={reference}: give runs:/<run_id> of a training run or a model.keras "
                        "file, or leave it unset and set model.weights (imagenet or a file) with model= and data=")
    return run_id
