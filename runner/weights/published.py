"""The published ImageNet-1k weights of the zoo's models (`model.weights=imagenet`): where each file
lives, how its tensors are laid out (a table of layouts.py), what its inputs were, its licence and
the accuracy its publisher reports (single 224 centre crop of the 50,000 validation images)."""

import dataclasses
import functools
import pathlib

from runner.data.pipeline import IMAGENET, Preprocessing
from runner.errors import UserError

# Caffe's convention, which the VGG authors' weights (converted by Keras Applications) expect: BGR,
# the ImageNet mean pixel subtracted, no scaling (keras.applications.imagenet_utils, mode "caffe").
CAFFE = Preprocessing(mean=(123.68 / 255, 116.779 / 255, 103.939 / 255), std=(1 / 255,) * 3, bgr=True)

KERAS_APPLICATIONS = "https://storage.googleapis.com/tensorflow/keras-applications"


@dataclasses.dataclass(frozen=True)
class Published:
    layout: str  # the conversion table, runner/weights/layouts.py
    preprocessing: Preprocessing
    licence: str
    top1: float  # as the publisher reports them, in %
    top5: float
    url: str | None = None  # a file fetched by keras.utils.get_file, checked against md5
    md5: str | None = None
    hub: str | None = None  # a Hugging Face repository, with its model.safetensors

    @property
    def address(self) -> str:
        return self.url or f"https://huggingface.co/{self.hub}/resolve/main/model.safetensors"


def _timm(name: str, top1: float, top5: float, layout: str) -> Published:
    # torchvision's original weights (IMAGENET1K_V1), which timm republishes as safetensors, readable
    # without torch; accuracies from torchvision's model documentation.
    return Published(layout, IMAGENET, "BSD-3-Clause (torchvision)", top1, top5, hub=f"timm/{name}.tv_in1k")


def _keras_applications(name: str, md5: str, top1: float, top5: float) -> Published:
    # The VGG authors' own Caffe weights, converted by Keras Applications (accuracies: keras.io).
    return Published("keras_applications_vgg", CAFFE, "CC BY 4.0 (Oxford VGG)", top1, top5,
                     url=f"{KERAS_APPLICATIONS}/{name}/{name}_weights_tf_dim_ordering_tf_kernels.h5", md5=md5)


PUBLISHED = {
    "resnet18": _timm("resnet18", 69.758, 89.078, "torchvision_resnet"),
    "resnet34": _timm("resnet34", 73.314, 91.420, "torchvision_resnet"),
    "resnet50": _timm("resnet50", 76.130, 92.862, "torchvision_resnet"),
    "resnet101": _timm("resnet101", 77.374, 93.546, "torchvision_resnet"),
    "resnet152": _timm("resnet152", 78.312, 94.046, "torchvision_resnet"),
    "vgg11": _timm("vgg11", 69.020, 88.628, "torchvision_vgg"),
    "vgg13": _timm("vgg13", 69.928, 89.246, "torchvision_vgg"),
    "vgg16": _keras_applications("vgg16", "64373286793e3c8b2b4e3219cbf3544b", 71.3, 90.1),
    "vgg19": _keras_applications("vgg19", "cbe5617147190e668d6c5d5026f83318", 71.3, 90.0),
}
IMAGENET_CLASSES = 1000
# ImageNet-1k's classes in the published classifiers' order (sorted WordNet ids), with their
# WordNet lemmas; from timm's data/_info (imagenet_synsets.txt, imagenet_synset_to_lemma.txt).
CLASSES_FILE = pathlib.Path(__file__).with_name("imagenet_classes.tsv")


@functools.cache
def imagenet_synsets() -> tuple[str, ...]:
    return tuple(line.split("\t", 1)[0] for line in CLASSES_FILE.read_text().splitlines())


def published(model: str) -> Published:
    if model not in PUBLISHED:
        raise UserError(f"model.weights=imagenet: {model} has no published ImageNet weights; "
                        f"models that do: {', '.join(PUBLISHED)}")
    return PUBLISHED[model]
