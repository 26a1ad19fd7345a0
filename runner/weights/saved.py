"""The model a run saves (`model.keras`), which stands alone: it takes images as they come, pixel
values 0-255 (uint8 or float, RGB or gray) at the network's input size, normalises them itself as
the run did, and returns class probabilities. Its class names and preprocessing travel inside the
same file, as `classes.json` beside Keras's own members of the .keras zip.

Built from Keras's own layers only (Rescaling, a fixed 1x1 convolution for Caffe's BGR order,
Softmax), around the network as a nested model: `network()` gives the network back, for
what reads its rows (visualize) or its weights (runner/weights/ours.py). Training normalises in its
compiled step and saves this wrapper only at the end, so nothing is normalised twice.
"""

import dataclasses
import json
import pathlib
import zipfile

import keras
import numpy as np
from keras import layers

from runner import disk
from runner.data.pipeline import Preprocessing, per_channel

METADATA = "classes.json"
PREFIX = "preprocess_"  # the wrapper's own layers; a network row never starts so


@dataclasses.dataclass(frozen=True)
class Metadata:
    class_names: list[str]
    preprocessing: Preprocessing
    resize_ratio: float  # the evaluation's shorter side / crop (eval.resize_ratio): how to crop an image


def standalone(network: keras.Model, metadata: Metadata) -> keras.Model:
    """`network` (logits, maybe with side outputs) behind its preprocessing, with probabilities out."""
    height, width, channels = network.input_shape[1:]
    mean, std = per_channel(metadata.preprocessing, channels)
    image = keras.Input((height, width, channels), name="image")
    # (x / 255 - mean) / std as one affine map per channel, in float32 whatever the training's dtype
    # policy; constants, not variables, so exporters fold them (tf2onnx trips on Normalization's).
    x = layers.Rescaling(scale=(1 / (255 * std)).tolist(), offset=(-mean / std).tolist(), name=f"{PREFIX}normalise",
                         dtype="float32")(image)
    if metadata.preprocessing.bgr and channels == 3:
        x = _reversed_channels(x)
    outputs = network(x)
    logits = outputs[0] if isinstance(outputs, (list, tuple)) else outputs  # auxiliary heads: training only
    probabilities = layers.Softmax(name=f"{PREFIX}probabilities", dtype="float32")(logits)
    return keras.Model(image, probabilities, name=f"{network.name}_standalone")


def save(path: pathlib.Path, network: keras.Model, metadata: Metadata) -> keras.Model:
    """The stand-alone model at `path`, whole or not at all (written beside it, then renamed); returns it."""
    # The training loop hands Keras's callbacks the optimizer through the network: not the model's to keep.
    optimizer, network.optimizer = getattr(network, "optimizer", None), None
    try:
        model = standalone(network, metadata)
        with disk.written_whole(path) as partial:
            model.save(partial)
            with zipfile.ZipFile(partial, "a") as archive:
                archive.writestr(METADATA, json.dumps({
                    "class_names": metadata.class_names, "resize_ratio": metadata.resize_ratio,
                    "preprocessing": dataclasses.asdict(metadata.preprocessing)}, indent=1))
    finally:
        network.optimizer = optimizer
    return model


def read_metadata(path: pathlib.Path) -> Metadata | None:
    """The class names and preprocessing saved with a model; None for a file without them."""
    with zipfile.ZipFile(path) as archive:
        if METADATA not in archive.namelist():
            return None
        data = json.loads(archive.read(METADATA))
    preprocessing = data["preprocessing"]
    return Metadata(data["class_names"], Preprocessing(tuple(preprocessing["mean"]), tuple(preprocessing["std"]),
                                                       preprocessing["bgr"]), data["resize_ratio"])


def network(model: keras.Model) -> keras.Model:
    """The network inside a stand-alone model; a model saved before there were any, as it is."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return nested[0] if len(nested) == 1 and model.name.endswith("_standalone") else model


def float32_copy(model: keras.Model) -> keras.Model:
    """`model` with every layer computing in float32, its weights copied: a model trained in mixed
    precision keeps bfloat16/float16 layers, which exporters (TFLite) cannot convert."""
    copy = keras.Model.from_config(_in_float32(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy


def _in_float32(config):
    """A model's config with each layer's dtype policy float32."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy":
            return {**config, "config": {**config["config"], "name": "float32"}}
        return {key: _in_float32(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_in_float32(value) for value in config]
    return config


def _reversed_channels(x):
    """RGB -> BGR as a fixed 1x1 convolution (a permutation matrix): a built-in layer, so the saved
    model reloads without custom code."""
    permutation = np.eye(3, dtype="float32")[::-1].reshape(1, 1, 3, 3)
    conv = layers.Conv2D(3, 1, use_bias=False, trainable=False, name=f"{PREFIX}bgr", dtype="float32")
    x = conv(x)
    conv.set_weights([permutation])
    return x
