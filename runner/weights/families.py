"""What every weights file of one source family shares, whoever publishes it: the layout of its tensors
(runner/weights/layouts.py), what its inputs were, the evaluation's crop, which of our rows its
classifier tensors land on, and (Caffe's) the LRN constants it was trained with. Published entries'
cards and cards of files given by path (model.weights=/path/...) both start from here."""

import dataclasses
import functools
import pathlib

from runner.data.pipeline import IMAGENET, Preprocessing
from runner.weights.card import WeightsCard

# Caffe's convention, which the VGG authors' weights (converted by Keras Applications) expect: BGR,
# the ImageNet mean pixel subtracted, no scaling (keras.applications.imagenet_utils, mode "caffe").
CAFFE = Preprocessing(mean=(123.68 / 255, 116.779 / 255, 103.939 / 255), std=(1 / 255,) * 3, bgr=True)
# BVLC's AlexNet subtracts the mean image of ILSVRC-2012 (data/ilsvrc12/imagenet_mean.binaryproto); its
# mean pixel, as Caffe's own classification example takes it (examples/00-classification.ipynb):
# B 104.00698793, G 116.66876762, R 122.67891434.
BVLC_ALEXNET = Preprocessing(mean=(122.67891434 / 255, 116.66876762 / 255, 104.00698793 / 255),
                             std=(1 / 255,) * 3, bgr=True)
# BVLC's GoogLeNet: mean_value 104, 117, 123 (B, G, R) in models/bvlc_googlenet/train_val.prototxt.
BVLC_GOOGLENET = Preprocessing(mean=(123 / 255, 117 / 255, 104 / 255), std=(1 / 255,) * 3, bgr=True)
# Caffe's LRN (src/caffe/layers/lrn_layer.cpp, ACROSS_CHANNELS): x / (k + alpha / n * sum x^2)^beta with
# k = 1 by default; both BVLC nets set local_size 5, alpha 1e-4, beta 0.75. Our lrn row is TensorFlow's
# x / (bias + alpha * sum x^2)^beta over depth_radius channels each side: bias 1, alpha 1e-4 / 5. The
# papers' (AlexNet Section 3.3: k = 2, alpha 1e-4 undivided) is what the zoo's files build.
CAFFE_LRN = (("depth_radius", 2), ("bias", 1.0), ("alpha", 1e-4 / 5), ("beta", 0.75))


@dataclasses.dataclass(frozen=True)
class Family:
    layout: str
    preprocessing: Preprocessing
    resize_ratio: float  # the evaluation's shorter side / crop: a 256 resize of the family's crop
    classifier: tuple[str, ...]  # our rows its classifier tensors land on, the last first
    lrn: tuple[tuple[str, float], ...] | None = None  # the LRN constants its weights were trained with


FAMILIES = {family.layout: family for family in (
    Family("torchvision_resnet", IMAGENET, 256 / 224, ("fc",)),
    Family("torchvision_vgg", IMAGENET, 256 / 224, ("fc8",)),
    Family("keras_applications_vgg", CAFFE, 256 / 224, ("fc8",)),
    Family("caffe_alexnet", BVLC_ALEXNET, 256 / 227, ("fc8",), CAFFE_LRN),
    Family("caffe_googlenet", BVLC_GOOGLENET, 256 / 224, ("classifier", "aux1", "aux2"), CAFFE_LRN),
)}
# A file given by path: its layout by suffix and model family (the model name's letters: resnet50 -> resnet).
FILE_LAYOUTS = {
    ".safetensors": {"resnet": "torchvision_resnet", "vgg": "torchvision_vgg"},
    ".h5": {"vgg": "keras_applications_vgg"},
    ".caffemodel": {"alexnet": "caffe_alexnet", "googlenet": "caffe_googlenet"},
}
IMAGENET_CLASSES_FILE = pathlib.Path(__file__).with_name("imagenet_classes.tsv")


def family_card(layout: str, **fields) -> WeightsCard:
    """A card of an ImageNet-1k classifier in `layout`'s family; `fields` say the rest (kind, reference...)."""
    family = FAMILIES[layout]
    return WeightsCard(layout=layout, preprocessing=family.preprocessing, resize_ratio=family.resize_ratio,
                       class_names=imagenet_lemmas(), class_ids=imagenet_synsets(), classifier=family.classifier,
                       lrn=family.lrn, **fields)


# ImageNet-1k's classes in the published classifiers' order (sorted WordNet ids, which Caffe's
# synset_words.txt follows too), with their WordNet lemmas; from timm's data/_info
# (imagenet_synsets.txt, imagenet_synset_to_lemma.txt).
@functools.cache
def _classes() -> tuple[tuple[str, str], ...]:
    return tuple(tuple(line.split("\t", 1)) for line in IMAGENET_CLASSES_FILE.read_text().splitlines())


def imagenet_synsets() -> tuple[str, ...]:
    return tuple(synset for synset, _ in _classes())


def imagenet_lemmas() -> tuple[str, ...]:
    """Each class's first lemma ("tench" of "tench, Tinca tinca"), as torchvision names its categories."""
    return tuple(lemmas.split(",", 1)[0] for _, lemmas in _classes())
