"""What `model.weights` names: the published ImageNet weights (`imagenet`), a file, or a previous run
(`runs:/<run_id>`, MLflow's form), resolved to a local file, its layout and what its inputs were."""

import dataclasses
import json
import pathlib
import re
import tempfile

from omegaconf import DictConfig, OmegaConf

from runner.data.pipeline import IMAGENET, Preprocessing
from runner.data.splits import data_preprocessing
from runner.errors import UserError
from runner.tracking import artifacts
from runner.weights import download, layouts, ours
from runner.weights.published import CAFFE, IMAGENET_CLASSES, published

OURS = layouts.OURS.name  # a model this project saved: read by layer name (runner/weights/ours.py)
RUNS_PREFIX = artifacts.RUNS_PREFIX
CLASSES = "${data.num_classes}"  # how the zoo's classifier rows take their size
# Files of another ecosystem, by suffix and model family (the name's letters: resnet50 -> resnet).
FOREIGN_LAYOUTS = {
    ".safetensors": ({"resnet": "torchvision_resnet", "vgg": "torchvision_vgg"}, IMAGENET),
    ".h5": ({"vgg": "keras_applications_vgg"}, CAFFE),
}


@dataclasses.dataclass(frozen=True)
class Source:
    reference: str  # model.weights as given
    describes: str  # for people: where the weights come from
    path: pathlib.Path
    layout: str  # a table of runner/weights/layouts.py, or OURS
    preprocessing: Preprocessing | None  # what its inputs were; None: not known (the data's)

    def as_params(self) -> dict[str, object]:
        return {"weights.source": self.reference, "weights.describes": self.describes,
                "weights.layout": self.layout, "weights.file": str(self.path)}


def locate(cfg: DictConfig, downloads: pathlib.Path) -> Source | None:
    """cfg.model.weights on this machine (a run's model is fetched into `downloads`); None: random
    initialisation. A published file is downloaded here, before any MLflow run starts."""
    reference = cfg.model.weights
    if not reference:
        return None
    if reference == "imagenet":
        entry = published(cfg.model.name)
        return Source(reference, f"published ImageNet-1k weights of {cfg.model.name} ({entry.address})",
                      download.fetch(entry), entry.layout, entry.preprocessing)
    if reference.startswith(RUNS_PREFIX):
        return _from_run(cfg, reference, downloads)
    return _from_file(cfg, reference)


def imagenet_head(cfg: DictConfig) -> DictConfig:
    """cfg with every classifier row (units: ${data.num_classes}) at ImageNet's 1000 classes: what
    published weights' classifier is, whatever data= holds."""
    copy = cfg.copy()
    rows = OmegaConf.to_container(copy.model.blocks, resolve=False)
    for index, row in enumerate(rows):
        if isinstance(row, dict) and row.get("units") == CLASSES:
            copy.model.blocks[index].units = IMAGENET_CLASSES
    return copy


def predicts_imagenet(reference: str) -> bool:
    """Whether weights `reference` carry ImageNet's 1000-way classifier: published, or a file of
    another ecosystem (a run's, or a file of ours, has the classes it was trained on)."""
    return not reference.startswith(RUNS_PREFIX) and not ours.is_ours(pathlib.Path(reference))


def _from_file(cfg: DictConfig, reference: str) -> Source:
    path = pathlib.Path(reference).expanduser()
    if not path.is_file():
        raise UserError(f"model.weights={reference}: no such file; give imagenet, runs:/<run_id>, or a "
                        f".keras, .weights.h5, .h5 or .safetensors file")
    if ours.is_ours(path):
        return Source(reference, f"the file {path}", path, OURS, None)
    family = re.match(r"[a-z]*", cfg.model.name)[0]
    by_family, preprocessing = FOREIGN_LAYOUTS.get(path.suffix, ({}, None))
    if family not in by_family:
        known = "; ".join(f"{suffix}: {', '.join(families)}" for suffix, (families, _) in FOREIGN_LAYOUTS.items())
        raise UserError(f"model.weights={reference}: no conversion from a {path.suffix or 'suffix-less'} file "
                        f"to {cfg.model.name}; families with one, by suffix: {known}")
    return Source(reference, f"the file {path}", path, by_family[family], preprocessing)


def _from_run(cfg: DictConfig, reference: str, downloads: pathlib.Path) -> Source:
    client, run = artifacts.referenced_run(cfg, "model.weights", reference)
    path = artifacts.model_file(client, run, tempfile.mkdtemp(prefix="weights-", dir=downloads))
    return Source(reference, f"run {run.info.run_id} ({run.info.run_name})", path, OURS,
                  run_preprocessing(client, run))


def run_preprocessing(client, run) -> Preprocessing:
    """What the run's model takes: its recorded preprocessing, or (runs before it was recorded) its data.*."""
    params = run.data.params
    if "preprocessing.mean" in params:
        return Preprocessing(tuple(json.loads(params["preprocessing.mean"])),
                             tuple(json.loads(params["preprocessing.std"])),
                             params.get("preprocessing.channels") == "BGR")
    return data_preprocessing(artifacts.run_config(client, run).data)
