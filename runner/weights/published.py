"""The published ImageNet-1k weights of the zoo's models (`model.weights=imagenet[:<tag>]`): where each
file lives and the card it carries (runner/weights/card.py): its layout, what its inputs were, its
licence and the accuracy its publisher reports. An architecture may have several; its first is what
`imagenet` alone names."""

import dataclasses
import functools
import pathlib

from runner.data.pipeline import IMAGENET, Preprocessing
from runner.errors import UserError
from runner.weights.card import PublishedMetrics, WeightsCard

# Caffe's convention, which the VGG authors' weights (converted by Keras Applications) expect: BGR,
# the ImageNet mean pixel subtracted, no scaling (keras.applications.imagenet_utils, mode "caffe").
CAFFE = Preprocessing(mean=(123.68 / 255, 116.779 / 255, 103.939 / 255), std=(1 / 255,) * 3, bgr=True)

KERAS_APPLICATIONS = "https://storage.googleapis.com/tensorflow/keras-applications"
IMAGENET_REFERENCE = "imagenet"  # model.weights=imagenet, or imagenet:<tag> for one of several
# Single centre crops of the 50,000 validation images, the 224 crop of a 256 resize: what both
# publishers describe, and what runner.evaluate does with the defaults (eval.resize_ratio).
CENTRE_CROP = 256 / 224
TORCHVISION_MEASURED = "ImageNet-1k validation, 50,000 images, 224 centre crop of a 256 resize (torchvision's docs)"
# Our classifier rows (the zoo's files' names) that each layout's classifier tensors land on.
CLASSIFIER = {"torchvision_resnet": ("fc",), "torchvision_vgg": ("fc8",), "keras_applications_vgg": ("fc8",)}
KERAS_MEASURED = "ImageNet-1k validation, 50,000 images, 224 centre crop (keras.io's Keras Applications table)"


@dataclasses.dataclass(frozen=True)
class Published:
    """Where one published file lives; its card says the rest."""

    card: WeightsCard
    url: str | None = None  # a file fetched by keras.utils.get_file, checked against md5
    md5: str | None = None
    hub: str | None = None  # a Hugging Face repository, with its model.safetensors

    @property
    def address(self) -> str:
        return self.url or hub_address(self.hub)


def hub_address(hub: str) -> str:
    return f"https://huggingface.co/{hub}/resolve/main/model.safetensors"


def _card(model: str, tag: str, layout: str, preprocessing: Preprocessing, metrics: PublishedMetrics,
          licence: str, page: str, address: str) -> WeightsCard:
    return WeightsCard(kind="published", reference=f"{IMAGENET_REFERENCE}:{tag}",
                       describes=f"published ImageNet-1k weights of {model}, {tag} ({address})",
                       architecture=model, layout=layout, preprocessing=preprocessing, resize_ratio=CENTRE_CROP,
                       class_names=imagenet_lemmas(), class_ids=imagenet_synsets(), classifier=CLASSIFIER[layout],
                       metrics=metrics, licence=licence, page=page)


def _timm(model: str, top1: float, top5: float, layout: str) -> Published:
    # torchvision's original weights (IMAGENET1K_V1), which timm republishes as safetensors, readable
    # without torch; accuracies from torchvision's model documentation.
    hub = f"timm/{model}.tv_in1k"
    card = _card(model, "tv_in1k", layout, IMAGENET, PublishedMetrics(top1, top5, TORCHVISION_MEASURED),
                 "BSD-3-Clause (torchvision)", f"https://huggingface.co/{hub}", hub_address(hub))
    return Published(card, hub=hub)


def _keras_applications(model: str, md5: str, top1: float, top5: float) -> Published:
    # The VGG authors' own Caffe weights, converted by Keras Applications (accuracies: keras.io).
    url = f"{KERAS_APPLICATIONS}/{model}/{model}_weights_tf_dim_ordering_tf_kernels.h5"
    card = _card(model, "keras", "keras_applications_vgg", CAFFE, PublishedMetrics(top1, top5, KERAS_MEASURED),
                 "CC BY 4.0 (Oxford VGG)", "https://keras.io/api/applications/vgg/", url)
    return Published(card, url=url, md5=md5)


@functools.cache
def published_weights() -> dict[str, dict[str, Published]]:
    """{model: {tag: entry}}, the default tag first."""
    return {
        "resnet18": {"tv_in1k": _timm("resnet18", 69.758, 89.078, "torchvision_resnet")},
        "resnet34": {"tv_in1k": _timm("resnet34", 73.314, 91.420, "torchvision_resnet")},
        "resnet50": {"tv_in1k": _timm("resnet50", 76.130, 92.862, "torchvision_resnet")},
        "resnet101": {"tv_in1k": _timm("resnet101", 77.374, 93.546, "torchvision_resnet")},
        "resnet152": {"tv_in1k": _timm("resnet152", 78.312, 94.046, "torchvision_resnet")},
        "vgg11": {"tv_in1k": _timm("vgg11", 69.020, 88.628, "torchvision_vgg")},
        "vgg13": {"tv_in1k": _timm("vgg13", 69.928, 89.246, "torchvision_vgg")},
        "vgg16": {"keras": _keras_applications("vgg16", "64373286793e3c8b2b4e3219cbf3544b", 71.3, 90.1),
                  "tv_in1k": _timm("vgg16", 71.592, 90.382, "torchvision_vgg")},
        "vgg19": {"keras": _keras_applications("vgg19", "cbe5617147190e668d6c5d5026f83318", 71.3, 90.0),
                  "tv_in1k": _timm("vgg19", 72.376, 90.876, "torchvision_vgg")},
    }


# ImageNet-1k's classes in the published classifiers' order (sorted WordNet ids), with their
# WordNet lemmas; from timm's data/_info (imagenet_synsets.txt, imagenet_synset_to_lemma.txt).
CLASSES_FILE = pathlib.Path(__file__).with_name("imagenet_classes.tsv")


@functools.cache
def _classes() -> tuple[tuple[str, str], ...]:
    return tuple(tuple(line.split("\t", 1)) for line in CLASSES_FILE.read_text().splitlines())


def imagenet_synsets() -> tuple[str, ...]:
    return tuple(synset for synset, _ in _classes())


def imagenet_lemmas() -> tuple[str, ...]:
    """Each class's first lemma ("tench" of "tench, Tinca tinca"), as torchvision names its categories."""
    return tuple(lemmas.split(",", 1)[0] for _, lemmas in _classes())


def is_published(reference: str) -> bool:
    return reference == IMAGENET_REFERENCE or reference.startswith(f"{IMAGENET_REFERENCE}:")


def published(model: str, reference: str = IMAGENET_REFERENCE) -> Published:
    """The entry `reference` (imagenet: the model's first; imagenet:<tag>: that one) names for `model`."""
    entries = published_weights()
    if model not in entries:
        raise UserError(f"model.weights={reference}: {model} has no published ImageNet weights; "
                        f"models that do: {', '.join(entries)}")
    tag = reference.partition(":")[2]
    if not tag:
        return next(iter(entries[model].values()))
    if tag not in entries[model]:
        valid = ", ".join(f"{IMAGENET_REFERENCE}:{name}" for name in entries[model])
        raise UserError(f"model.weights={reference}: {model} has no published weights tagged {tag!r}; "
                        f"valid: {IMAGENET_REFERENCE} (the first) or {valid}")
    return entries[model][tag]
