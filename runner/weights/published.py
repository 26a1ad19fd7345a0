"""The published ImageNet-1k weights of the zoo's models (`model.weights=imagenet[:<tag>]`): where each
file lives and the card it carries (runner/weights/card.py): its family's layout, inputs, crop and
classifier rows (runner/weights/families.py), its licence and the accuracy its publisher reports. An
architecture may have several; its first is what `imagenet` alone names."""

import dataclasses
import functools

from runner.mistakes.errors import UserError
from runner.weights.card import PublishedMetrics, WeightsCard
from runner.weights.families import family_card

KERAS_APPLICATIONS = "https://storage.googleapis.com/tensorflow/keras-applications"
BVLC = "http://dl.caffe.berkeleyvision.org"
IMAGENET_REFERENCE = "imagenet"  # model.weights=imagenet, or imagenet:<tag> for one of several
TORCHVISION_MEASURED = "ImageNet-1k validation, 50,000 images, 224 centre crop of a 256 resize (torchvision's docs)"
KERAS_MEASURED = "ImageNet-1k validation, 50,000 images, 224 centre crop (keras.io's Keras Applications table)"
BVLC_MEASURED = "ILSVRC-2012 validation, 50,000 images, single centre crop (the model's readme in BVLC/caffe)"
BVLC_LICENCE = "unrestricted use (BVLC)"


@dataclasses.dataclass(frozen=True)
class Published:
    """Where one published file lives; its card says the rest."""

    card: WeightsCard
    url: str | None = None  # a file fetched by keras.utils.get_file, checked against md5 or sha1
    md5: str | None = None
    sha1: str | None = None  # what BVLC publishes, which keras.utils.get_file cannot check
    hub: str | None = None  # a Hugging Face repository, with its model.safetensors

    @property
    def address(self) -> str:
        return self.url or hub_address(self.hub)


def hub_address(hub: str) -> str:
    return f"https://huggingface.co/{hub}/resolve/main/model.safetensors"


def _card(model: str, tag: str, layout: str, metrics: PublishedMetrics, licence: str, page: str,
          address: str) -> WeightsCard:
    return family_card(layout, kind="published", reference=f"{IMAGENET_REFERENCE}:{tag}",
                       describes=f"published ImageNet-1k weights of {model}, {tag} ({address})", architecture=model,
                       metrics=metrics, licence=licence, page=page)


def _timm(model: str, top1: float, top5: float, layout: str) -> Published:
    # torchvision's original weights (IMAGENET1K_V1), which timm republishes as safetensors, readable
    # without torch; accuracies from torchvision's model documentation.
    hub = f"timm/{model}.tv_in1k"
    card = _card(model, "tv_in1k", layout, PublishedMetrics(top1, top5, TORCHVISION_MEASURED),
                 "BSD-3-Clause (torchvision)", f"https://huggingface.co/{hub}", hub_address(hub))
    return Published(card, hub=hub)


def _keras_applications(model: str, md5: str, top1: float, top5: float) -> Published:
    # The VGG authors' own Caffe weights, converted by Keras Applications (accuracies: keras.io).
    url = f"{KERAS_APPLICATIONS}/{model}/{model}_weights_tf_dim_ordering_tf_kernels.h5"
    card = _card(model, "keras", "keras_applications_vgg", PublishedMetrics(top1, top5, KERAS_MEASURED),
                 "CC BY 4.0 (Oxford VGG)", "https://keras.io/api/applications/vgg/", url)
    return Published(card, url=url, md5=md5)


def _bvlc(model: str, name: str, layout: str, sha1: str, top1: float, top5: float) -> Published:
    # BVLC's own replications of the papers, trained in Caffe in 2014 (models/<name>/readme.md: the
    # file, its sha1, the licence and the centre-crop accuracies). Their readmes list how they differ:
    # AlexNet without the relighting augmentation, its non-zero biases started at 0.1 instead of 1;
    # GoogLeNet without relighting, scale or aspect-ratio augmentation, with xavier initialisation and
    # a faster schedule (60 epochs). Both use Caffe's LRN (families.CAFFE_LRN).
    url = f"{BVLC}/{name}.caffemodel"
    card = _card(model, "bvlc", layout, PublishedMetrics(top1, top5, BVLC_MEASURED), BVLC_LICENCE,
                 f"https://github.com/BVLC/caffe/tree/master/models/{name}", url)
    return Published(card, url=url, sha1=sha1)


@functools.cache
def published_weights() -> dict[str, dict[str, Published]]:
    """{model: {tag: entry}}, the default tag first."""
    return {
        "alexnet_grouped": {"bvlc": _bvlc("alexnet_grouped", "bvlc_alexnet", "caffe_alexnet",
                                          "9116a64c0fbe4459d18f4bb6b56d647b63920377", 57.1, 80.2)},
        "googlenet": {"bvlc": _bvlc("googlenet", "bvlc_googlenet", "caffe_googlenet",
                                    "405fc5acd08a3bb12de8ee5e23a96bec22f08204", 68.7, 88.9)},
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
