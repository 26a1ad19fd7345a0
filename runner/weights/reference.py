"""What `model.weights` names: published weights (`imagenet`, `imagenet:<tag>`), a file, or a previous
run (`runs:/<run_id>`, MLflow's form), resolved to a local file and its card (runner/weights/card.py)."""

import dataclasses
import json
import pathlib
import re
import tempfile

from omegaconf import DictConfig, OmegaConf

from builders.rows import BuiltModel
from runner.data.pipeline import Preprocessing
from runner.data.splits import data_preprocessing
from runner.mistakes.errors import UserError
from runner.tracking import artifacts
from runner.weights import download, layouts, ours, saved
from runner.weights.card import WeightsCard
from runner.weights.families import FILE_LAYOUTS, family_card
from runner.weights.published import is_published, published

OURS = layouts.OURS.name  # a model this project saved: read by layer name (runner/weights/ours.py)
RUNS_PREFIX = artifacts.RUNS_PREFIX
CLASSES = "${data.num_classes}"  # how the zoo's classifier rows take their size
VALID = "give imagenet, runs:/<run_id>, or a .keras, .weights.h5, .h5, .safetensors or .caffemodel file"


@dataclasses.dataclass(frozen=True)
class Source:
    path: pathlib.Path  # the tensors on this machine
    card: WeightsCard


def locate(cfg: DictConfig, downloads: pathlib.Path) -> Source | None:
    """cfg.model.weights on this machine (a run's model is fetched into `downloads`); None: random
    initialisation. A published file is downloaded here, before any MLflow run starts."""
    reference = cfg.model.weights
    if not reference:
        return None
    if is_published(reference):
        entry = published(cfg.model.name, reference)
        return Source(download.fetch(entry), entry.card)
    if reference.startswith(RUNS_PREFIX):
        return _from_run(cfg, reference, downloads)
    return _from_file(cfg, reference)


def as_the_weights_need(cfg: DictConfig, card: WeightsCard, *, own_classes: bool) -> DictConfig:
    """cfg as these weights compute: their LRN constants on every lrn row (Caffe's, not the paper's),
    their evaluation's crop where eval.resize_ratio is unset (BVLC AlexNet's 227 of 256), and with
    `own_classes` their number of classes on the classifier rows."""
    if own_classes and card.num_classes:
        cfg = with_classes(cfg, card.num_classes)
    if card.lrn:
        cfg = with_lrn(cfg, card.lrn)
    if card.resize_ratio and cfg.eval.resize_ratio is None:
        cfg = cfg.copy()
        cfg.eval.resize_ratio = card.resize_ratio
    return cfg


def with_classes(cfg: DictConfig, count: int) -> DictConfig:
    """cfg with every classifier row (units: ${data.num_classes}) at `count` classes: the weights'
    own classifier, whatever data= holds."""
    copy = cfg.copy()
    for index in _classifier_indices(copy):
        copy.model.blocks[index].units = count
    return copy


def with_lrn(cfg: DictConfig, constants: tuple[tuple[str, float], ...]) -> DictConfig:
    """cfg with every lrn row at `constants`: the ones the weights were trained with (Caffe's)."""
    copy = cfg.copy()
    rows = OmegaConf.to_container(copy.model.blocks, resolve=False)
    for index, row in enumerate(rows):
        if isinstance(row, dict) and row.get("type") == "lrn":
            for key, value in constants:
                copy.model.blocks[index][key] = value
    return copy


def classifier_rows(cfg: DictConfig, built: BuiltModel) -> tuple[str, ...]:
    """The names of the rows that predict the classes (units: ${data.num_classes} in the model's file):
    the last first, then the auxiliary heads."""
    paths = {f"model.blocks[{index}]" for index in _classifier_indices(cfg)}
    names = [row.application.name for row in built.rows if row.application.path in paths]
    return tuple(names[-1:]) + tuple(names[:-1])


def _classifier_indices(cfg: DictConfig) -> list[int]:
    rows = OmegaConf.to_container(cfg.model.blocks, resolve=False)
    return [index for index, row in enumerate(rows) if isinstance(row, dict) and row.get("units") == CLASSES]


def _from_file(cfg: DictConfig, reference: str) -> Source:
    path = pathlib.Path(reference).expanduser()
    if not path.is_file():
        raise UserError(f"model.weights={reference}: no such file; {VALID}")
    describes = f"the file {path}"
    if ours.is_ours(path):
        saved_card = None  # a .weights.h5 holds weights alone
        if path.suffix == ".keras":
            saved.check_archive(path, "model.weights", VALID)
            saved_card = saved.read_card(path)
        return Source(path, _as_reached(saved_card, "file", reference, describes, cfg.model.name))
    # Files of another ecosystem, by suffix and model family (the name's letters: resnet50 -> resnet);
    # each holds an ImageNet-1k classifier.
    family = re.match(r"[a-z]*", cfg.model.name)[0]
    by_family = FILE_LAYOUTS.get(path.suffix, {})
    if family not in by_family:
        known = "; ".join(f"{suffix}: {', '.join(families)}" for suffix, families in FILE_LAYOUTS.items())
        raise UserError(f"model.weights={reference}: no conversion from a {path.suffix or 'suffix-less'} file "
                        f"to {cfg.model.name}; families with one, by suffix: {known}")
    return Source(path, family_card(by_family[family], kind="file", reference=reference, describes=describes,
                                    architecture=cfg.model.name))


def _from_run(cfg: DictConfig, reference: str, downloads: pathlib.Path) -> Source:
    return run_model(*artifacts.referenced_run(cfg, "model.weights", reference), downloads)


def run_model(client, run, downloads: pathlib.Path) -> Source:
    """A training run's model.keras, fetched into `downloads`, with its card (a run saved before cards:
    what its params recorded)."""
    path = artifacts.model_file(client, run, tempfile.mkdtemp(prefix="weights-", dir=downloads))
    card = saved.read_card(path) or _recorded_card(client, run)
    describes = f"run {run.info.run_id} ({run.info.run_name})"
    return Source(path, _as_reached(card, "run", f"{RUNS_PREFIX}{run.info.run_id}", describes,
                                    run.data.params.get("model.name", "")))


def _as_reached(card: WeightsCard | None, kind: str, reference: str, describes: str, model: str) -> WeightsCard:
    """A saved model's card (or none: a .weights.h5, a file saved before cards) as this reference reached it."""
    if card is None:
        return WeightsCard(kind=kind, reference=reference, describes=describes, architecture=model, layout=OURS,
                           preprocessing=None)
    return dataclasses.replace(card, kind=kind, reference=reference, describes=describes, layout=OURS,
                               architecture=card.architecture or model)  # classes.json names none


def _recorded_card(client, run) -> WeightsCard:
    """A run saved before models held their card: what its params recorded of its inputs."""
    return WeightsCard(kind="run", reference="", describes="", architecture=run.data.params.get("model.name", ""),
                       layout=OURS, preprocessing=_recorded_preprocessing(client, run))


def _recorded_preprocessing(client, run) -> Preprocessing:
    """What the run's model takes: its recorded preprocessing, or (runs before it was recorded) its data.*."""
    params = run.data.params
    if "preprocessing.mean" in params:
        return Preprocessing(tuple(json.loads(params["preprocessing.mean"])),
                             tuple(json.loads(params["preprocessing.std"])),
                             params.get("preprocessing.channels") == "BGR")
    return data_preprocessing(artifacts.run_config(client, run).data)
