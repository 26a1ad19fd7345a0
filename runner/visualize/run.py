"""One visualisation: the run, its config, model and validation images in; figures out, logged on it."""

import dataclasses
import pathlib
import tempfile

import keras
import mlflow
from mlflow.entities import Run
from omegaconf import DictConfig

import builders  # noqa: F401  (registers its layers, LRN and the padded pools, which saved models use)
from runner.bounds import check_bounds
from runner.data.splits import load
from runner.schema import VisualizeConfig
from runner.tracking.artifacts import model_file, run_config
from runner.training.model_report import model_spec
from runner.visualize.render import Options, chosen_rows, visualize
from runner.visualize.source import find_run, log_figures
from runner.weights import saved
from runner.weights.source import run_preprocessing

ARTIFACT_FOLDER = "visualize"


@dataclasses.dataclass
class Visualization:
    run: Run
    paths: list[pathlib.Path]  # the PNGs written
    notes: list[str]  # what the user should know about them (e.g. activations guided besides ReLU)

    @property
    def artifacts(self) -> list[str]:
        return [f"{ARTIFACT_FOLDER}/{path.name}" for path in self.paths]


def visualize_run(client: mlflow.MlflowClient, cfg: DictConfig, folder: pathlib.Path) -> Visualization:
    """The figures of run cfg.run_id (else the latest finished run), written into `folder` and logged
    on the run under visualize/. `cfg` is the visualize node."""
    _check_counts(cfg)
    run = find_run(client, cfg.run_id)
    train_cfg = run_config(client, run)
    with tempfile.TemporaryDirectory(prefix="visualize-") as downloads:
        model = saved.network(keras.saving.load_model(model_file(client, run, downloads), compile=False))
    spec, options = model_spec(train_cfg), Options.of(cfg)
    chosen_rows(model, spec, options)  # a wrong row name fails now, not after the data's file check
    train_cfg.data.cache = False  # one pass over the validation images
    splits = load(train_cfg, preprocessing=run_preprocessing(client, run))  # the weights' (model.weights), too
    batches = splits.val.unbatch().batch(cfg.batch_size)  # training's batch can be large for a forward pass
    paths, notes = visualize(model, spec, batches, splits.class_names, splits.normalise, options, folder)
    log_figures(client, run.info.run_id, paths)
    return Visualization(run, paths, notes)


def _check_counts(cfg: DictConfig) -> None:
    check_bounds(cfg, VisualizeConfig, "visualize")
