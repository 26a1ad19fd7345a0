"""Starting weights on a built model (`model.weights`), and the preprocessing the run then uses.

When data.num_classes differs from the source's classes, everything but the classifier (the last
row, and GoogLeNet's auxiliary classifiers) is loaded, and the classifier starts afresh: the new
head of fine-tuning. What was loaded and what was not is the run's weights.txt.
"""

import logging

import numpy as np
from omegaconf import DictConfig

from builders.rows import BuiltModel
from runner.data.pipeline import IMAGENET, Preprocessing
from runner.data.splits import data_preprocessing
from runner.weights import convert, ours, tensors
from runner.weights.source import OURS, Source

log = logging.getLogger(__name__)


def load_into(built: BuiltModel, source: Source, num_classes: int) -> convert.Loaded:
    """Sets the source's weights on `built` in place (all checked first) and says what it did."""
    if source.layout == OURS:
        found = _named_by_our_layers(built, ours.read(source.path))
    else:
        found = tensors.read(source.path)
    new_head = not convert.head_fits(built.model, found, source.layout)
    if new_head:
        log.info("model.weights: a new classifier for %d classes", num_classes)
    return convert.assign(built.model, found, source.layout, new_head=new_head)


def preprocessing(data: DictConfig, source: Source | None) -> Preprocessing:
    """The source's preprocessing, unless data.mean or data.std are set: they win, with a warning
    where they disagree with what the weights were trained with."""
    theirs = source.preprocessing if source else None
    if data.mean is None and data.std is None:
        return theirs or IMAGENET
    given = data_preprocessing(data)
    if theirs and (given.mean, given.std) != (theirs.mean, theirs.std):
        log.warning("data.mean %s and data.std %s differ from what model.weights=%s were trained with "
                    "(mean %s, std %s): using data's", list(given.mean), list(given.std), source.reference,
                    list(theirs.mean), list(theirs.std))
    return Preprocessing(given.mean, given.std, bgr=bool(theirs and theirs.bgr))


def _named_by_our_layers(built: BuiltModel, layers: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """Our saved layers' variables as `<layer>/<weight>`, named as the same layer of `built` names
    them; a layer `built` lacks keeps its indices (`<layer>/0`), which no weight receives."""
    model_layers = {layer.name: layer for layer in built.model.layers}
    named = {}
    for layer_name, arrays in layers.items():
        layer = model_layers.get(layer_name)
        weights = layer.weights if layer is not None and len(layer.weights) == len(arrays) else None
        for index, array in enumerate(arrays):
            weight = weights[index].path.split("/")[-1] if weights else str(index)
            named[f"{layer_name}/{weight}"] = array
    return named

