"""A weights card: everything a weight needs in order to be used correctly, in one frozen object.

Where the tensors come from and how they are laid out, what the network expects of an image (the
normalisation, the channel order and the evaluation's crop), the classes it predicts and which rows
predict them, what its publisher measured, its licence and, for files this project writes, how they
were made. Every source gives one (runner/weights/reference.py): a published entry carries its card, a
saved model.keras holds its card (runner/weights/saved.py), a run's card is its model file's. MLflow's
`weights.*` and `preprocessing.*` params are derived from it, never the reverse (torchvision's
`Weights.meta` and timm's `PretrainedCfg` play the same part).
"""

import dataclasses
import datetime
import importlib.metadata
import json
import logging
from typing import Any

from omegaconf import DictConfig

from runner.data.pipeline import IMAGENET, Preprocessing
from runner.data.splits import data_preprocessing

log = logging.getLogger(__name__)

INTERPOLATION = "bilinear"  # how runner.data.pixels resizes before the evaluation's crop (tf.image.resize)
PROJECT = "classic-cnns"  # the distribution's name (pyproject.toml)
# Of the card's JSON inside a saved model, for a later reader that must tell old cards from new ones;
# this one reads any, ignoring fields it does not know.
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class PublishedMetrics:
    """What the weights' publisher reports, as they report it (%)."""

    top1: float
    top5: float
    measured_on: str  # e.g. "ImageNet-1k validation, 50,000 images, single 224 centre crop"


@dataclasses.dataclass(frozen=True)
class Provenance:
    """How a file this project wrote was made."""

    project_version: str
    keras_version: str
    tensorflow_version: str
    run_id: str | None  # the MLflow run that saved it, when one recorded it
    date: str  # ISO 8601, UTC

    @classmethod
    def now(cls, run_id: str | None) -> "Provenance":
        import keras
        import tensorflow as tf

        try:
            version = importlib.metadata.version(PROJECT)
        except importlib.metadata.PackageNotFoundError:  # run from a checkout that is not installed
            version = "unknown"
        return cls(version, keras.__version__, tf.__version__, run_id,
                   datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))


@dataclasses.dataclass(frozen=True)
class WeightsCard:
    kind: str  # "published", "file" (a file of ours or of another ecosystem) or "run"
    reference: str  # model.weights, resolved: imagenet:<tag> (imagenet names the first), a path, runs:/<run_id>
    describes: str  # for people: where the weights come from
    architecture: str  # the zoo's model name (conf/model/<name>.yaml)
    layout: str  # a table of runner/weights/layouts.py, or "ours"
    preprocessing: Preprocessing | None  # what its inputs were; None: not known (then the data's)
    resize_ratio: float | None = None  # the evaluation's shorter side / crop; None: not known (eval's)
    interpolation: str = INTERPOLATION
    class_names: tuple[str, ...] | None = None  # in the classifier's order; None: not known
    class_ids: tuple[str, ...] | None = None  # as folders name them (WordNet ids), when they differ
    classifier: tuple[str, ...] = ()  # the rows that predict the classes: the last, then auxiliary heads
    # The LRN constants (an lrn row's keys) the weights were trained with, which every lrn row takes
    # when they load (Caffe's differ from the papers'); None: the model file's own.
    lrn: tuple[tuple[str, float], ...] | None = None  # (key, value) pairs: the card stays hashable
    metrics: PublishedMetrics | None = None
    licence: str | None = None
    page: str | None = None  # the paper or page the weights come with
    provenance: Provenance | None = None

    @property
    def num_classes(self) -> int | None:
        return len(self.class_names) if self.class_names is not None else None

    @property
    def ids(self) -> tuple[str, ...] | None:
        """The classes as a dataset's folders name them (ImageNet's WordNet ids), else their names."""
        return self.class_ids or self.class_names

    def as_params(self) -> dict[str, object]:
        """The card's share of a run's MLflow params (weights.*), flat and short."""
        params = {"weights.source": self.reference, "weights.kind": self.kind, "weights.describes": self.describes,
                  "weights.layout": self.layout}
        if self.num_classes is not None:
            params["weights.num_classes"] = self.num_classes
        if self.metrics is not None:
            params |= {"weights.published_top1": self.metrics.top1, "weights.published_top5": self.metrics.top5}
        if self.licence:
            params["weights.licence"] = self.licence
        if self.lrn:
            params["weights.lrn"] = json.dumps(dict(self.lrn), sort_keys=True)
        if self.provenance and self.provenance.run_id:
            params["weights.run_id"] = self.provenance.run_id
        return params

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT_VERSION, **dataclasses.asdict(self)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "WeightsCard":
        data = json.loads(text)
        data.pop("format", None)
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "WeightsCard":
        """A card from its JSON's fields; a newer card's extra fields, at any depth, are left out. A
        field missing or of the wrong shape raises KeyError, TypeError or ValueError."""
        data = _known(cls, data)
        nested = {"preprocessing": _preprocessing, "metrics": lambda d: PublishedMetrics(**_known(PublishedMetrics, d)),
                  "provenance": lambda d: Provenance(**_known(Provenance, d))}
        for key, make in nested.items():
            if data.get(key) is not None:
                data[key] = make(data[key])
        for key in ("class_names", "class_ids", "classifier"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        if data.get("lrn") is not None:
            data["lrn"] = tuple((str(key), value) for key, value in data["lrn"])
        return cls(**data)

    def text(self) -> str:
        """The card for people: the head of the run's weights.txt."""
        inputs = self.preprocessing
        lines = [self.describes,
                 f"architecture: {self.architecture}",
                 f"layout: {self.layout}",
                 "preprocessing: " + (f"mean {list(inputs.mean)}, std {list(inputs.std)} (of 0-1 pixels), "
                                      f"{'BGR' if inputs.bgr else 'RGB'}" if inputs else "not known (the data's)"),
                 "evaluation crop: " + (f"shorter side {self.resize_ratio:.4f} x the crop, {self.interpolation}"
                                        if self.resize_ratio else "not known (eval.resize_ratio)"),
                 "classes: " + (f"{self.num_classes} ({', '.join(self.class_names[:3])}"
                                f"{', ...' if self.num_classes > 3 else ''})" if self.class_names else "not known"),
                 f"classifier rows: {', '.join(self.classifier) or 'not known'}"]
        if self.lrn:
            lines.append("lrn rows take: " + ", ".join(f"{key} {value:g}" for key, value in self.lrn))
        if self.metrics:
            lines.append(f"published: top-1 {self.metrics.top1}%, top-5 {self.metrics.top5}% "
                         f"({self.metrics.measured_on})")
        lines += [f"{label}: {value}" for label, value in (("licence", self.licence), ("page", self.page)) if value]
        if self.provenance:
            made = self.provenance
            lines.append(f"made by: classic-cnns {made.project_version}, Keras {made.keras_version}, "
                         f"TensorFlow {made.tensorflow_version}, {made.date}"
                         + (f", run {made.run_id}" if made.run_id else ""))
        return "\n".join(lines) + "\n"


def _known(kind: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {field.name for field in dataclasses.fields(kind)}
    return {key: value for key, value in data.items() if key in names}


def _preprocessing(data: dict[str, Any]) -> Preprocessing:
    return Preprocessing(tuple(data["mean"]), tuple(data["std"]), bool(data.get("bgr", False)))


def model_inputs(data: DictConfig, card: WeightsCard | None) -> Preprocessing:
    """What the model is fed: the card's preprocessing, unless data.mean or data.std are set: they win,
    with a warning where they disagree with what the weights were trained with."""
    theirs = card.preprocessing if card else None
    if data.mean is None and data.std is None:
        return theirs or IMAGENET
    given = data_preprocessing(data)
    if theirs and (given.mean, given.std) != (theirs.mean, theirs.std):
        log.warning("data.mean %s and data.std %s differ from what model.weights=%s were trained with "
                    "(mean %s, std %s): using data's", list(given.mean), list(given.std), card.reference,
                    list(theirs.mean), list(theirs.std))
    return Preprocessing(given.mean, given.std, bgr=bool(theirs and theirs.bgr))
