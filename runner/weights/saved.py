"""The model a run saves (`model.keras`), which stands alone: it takes images as they come, pixel
values 0-255 (uint8 or float, RGB or gray) at the network's input size, normalises them itself as
the run did, and returns class probabilities. Its card (runner/weights/card.py: class names,
preprocessing, crop, classifier rows, provenance) travels inside the same file, as `card.json` beside
Keras's own members of the .keras zip; files saved before cards hold `classes.json`, read as a card.

Built from Keras's own layers only (Rescaling, a fixed 1x1 convolution for Caffe's BGR order,
Softmax), around the network as a nested model: `network()` gives the network back, for
what reads its rows (visualize) or its weights (runner/weights/ours.py). Training normalises in its
compiled step and saves this wrapper only at the end, so nothing is normalised twice.
"""

import json
import pathlib
import zipfile

import keras
import numpy as np
from keras import layers

from runner import disk
from runner.data.pipeline import Preprocessing, per_channel
from runner.mistakes.errors import UserError
from runner.mistakes.messages import first_line
from runner.weights.card import WeightsCard

CARD = "card.json"
OLD_METADATA = "classes.json"  # what files saved before cards hold: class names, preprocessing, crop
KERAS_MEMBERS = ("config.json", "model.weights.h5")  # what keras.saving.save_model writes into the zip
PREFIX = "preprocess_"  # the wrapper's own layers; a network row never starts so


def standalone(network: keras.Model, preprocessing: Preprocessing) -> keras.Model:
    """`network` (logits, maybe with side outputs) behind its preprocessing, with probabilities out."""
    height, width, channels = network.input_shape[1:]
    mean, std = per_channel(preprocessing, channels)
    image = keras.Input((height, width, channels), name="image")
    # (x / 255 - mean) / std as one affine map per channel, in float32 whatever the training's dtype
    # policy; constants, not variables, so exporters fold them (tf2onnx trips on Normalization's).
    x = layers.Rescaling(scale=(1 / (255 * std)).tolist(), offset=(-mean / std).tolist(), name=f"{PREFIX}normalise",
                         dtype="float32")(image)
    if preprocessing.bgr and channels == 3:
        x = _reversed_channels(x)
    outputs = network(x)
    logits = outputs[0] if isinstance(outputs, (list, tuple)) else outputs  # auxiliary heads: training only
    probabilities = layers.Softmax(name=f"{PREFIX}probabilities", dtype="float32")(logits)
    return keras.Model(image, probabilities, name=f"{network.name}_standalone")


def save(path: pathlib.Path, network: keras.Model, card: WeightsCard) -> keras.Model:
    """The stand-alone model at `path` with its card, whole or not at all (written beside it, then
    renamed); returns it."""
    # The training loop hands Keras's callbacks the optimizer through the network: not the model's to keep.
    optimizer, network.optimizer = getattr(network, "optimizer", None), None
    try:
        model = standalone(network, card.preprocessing)
        with disk.written_whole(path) as partial:
            model.save(partial)
            with zipfile.ZipFile(partial, "a") as archive:
                archive.writestr(CARD, card.to_json())
    finally:
        network.optimizer = optimizer
    return model


VALID = "give runs:/<run_id> or a model.keras file a run saved"
# Keras's word when it refuses to read code stored in a file (a Lambda layer's function), which would run
SAFE_MODE = "safe_mode"


def load(path: pathlib.Path, key: str) -> keras.Model:
    """The model saved at `path` (given as config `key`), or one line saying what the file is instead."""
    check_archive(path, key)
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # a damaged member: zlib's, h5py's, Keras's own errors, which vary
        why = first_line(str(error)) or type(error).__name__
        if SAFE_MODE in why:
            raise UserError(f"{key}: {path} holds Python code (a Lambda layer), which Keras's safe mode refuses to "
                            f"load because reading it would run it; this project's models hold none: {VALID}") from None
        raise UserError(f"{key}: {path} is a damaged Keras model file ({why}): {VALID}") from None


def check_archive(path: pathlib.Path, key: str, valid: str = VALID) -> None:
    """The cheap checks, before any expensive read: a .keras file is a zip archive holding Keras's
    config.json and model.weights.h5; a truncated one has lost its zip directory, which sits at the end.
    `valid`: what config `key` takes instead."""
    if not zipfile.is_zipfile(path):
        raise UserError(f"{key}: {path} is not a Keras model file (a .keras file is a zip archive; this is "
                        f"not one, or it was cut short): {valid}")
    with zipfile.ZipFile(path) as archive:
        missing = [name for name in KERAS_MEMBERS if name not in archive.namelist()]
    if missing:
        raise UserError(f"{key}: {path} is a zip archive but not a Keras model (no {', '.join(missing)}): {valid}")


def read_card(path: pathlib.Path) -> WeightsCard | None:
    """The card saved with a model (an older file's classes.json as one); None for a file without either."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        member = CARD if CARD in names else OLD_METADATA if OLD_METADATA in names else None
        if member is None:
            return None
        text = archive.read(member).decode(errors="replace")
    try:
        if member == CARD:
            return WeightsCard.from_json(text)
        return WeightsCard.from_dict({"kind": "file", "reference": str(path), "describes": f"the file {path}",
                                      "architecture": "", "layout": "ours", **json.loads(text)})
    except (ValueError, TypeError, KeyError, AttributeError) as error:  # JSONDecodeError is a ValueError
        raise UserError(f"{path}: its {member} cannot be read ({type(error).__name__}: {error}); the file is "
                        f"damaged, or was not written by this project: {VALID}") from None


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
