"""The stand-alone model an app uses (runner/weights/saved.py: 0-255 images in, probabilities out),
from either form a user can give: a run's or a file's model.keras (`<app>.model`), or an architecture
with weights (`model=<name> model.weights=<imagenet | file | runs:/<run_id>>`), whose card then says
the classes and the preprocessing. predict, export and visualize start from here."""

import dataclasses
import tempfile

import keras
from omegaconf import DictConfig, OmegaConf

from runner.mistakes.errors import UserError
from runner.session.parts import ModelPart, prepare_model
from runner.tracking import artifacts
from runner.weights import saved
from runner.weights.card import WeightsCard


@dataclasses.dataclass(frozen=True)
class StandAlone:
    model: keras.Model  # 0-255 images in, probabilities out
    card: WeightsCard | None  # None: a model saved before models held their card or classes
    part: ModelPart | None = None  # how it was set up, when it was built here from weights


def stand_alone(cfg: DictConfig, key: str) -> StandAlone:
    """The model config `key` (e.g. predict.model) names, else model= with model.weights."""
    given = OmegaConf.select(cfg, key)
    if given and cfg.model.weights:
        raise UserError(f"{key}={given} and model.weights={cfg.model.weights}: give one; a saved model as "
                        f"{key}, or model=<name> with model.weights")
    if cfg.model.weights:
        return from_weights(cfg)
    if not given:
        raise UserError(f"{key} is not set; give runs:/<run_id> or a model.keras file, or model=<name> "
                        "model.weights=<imagenet, a file or runs:/<run_id>>")
    with tempfile.TemporaryDirectory(prefix="model-") as downloads:
        path = artifacts.model_reference(cfg, key, downloads)
        return StandAlone(saved.load(path, key), saved.read_card(path))


def from_weights(cfg: DictConfig) -> StandAlone:
    """model= built with model.weights, in float32 (an export's and a prediction's precision), behind
    the preprocessing its card states: there is no data here whose statistics could be meant (the
    composed default's are not), so ImageNet's only where the card states none."""
    cfg = cfg.copy()
    cfg.trainer.precision = "float32"
    cfg.data.mean = cfg.data.std = None
    part = prepare_model(cfg, for_training=False, classes_from_weights=True)
    return StandAlone(saved.standalone(part.model, part.preprocessing), part.card, part)
