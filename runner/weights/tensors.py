"""Weights files as {source name: numpy array}, in the source's own names and layouts.

* `.safetensors` (the Hugging Face hub's format, e.g. timm/resnet50.tv_in1k): the state dict's keys
  as they are (`layer1.0.conv1.weight`), read with safetensors' numpy API (no torch).
* `.h5` / `.hdf5`, legacy Keras weights (Keras Applications' vgg16_weights_tf_dim_ordering_tf_kernels.h5,
  or a whole model saved as HDF5, whose weights sit under `model_weights`): the root attribute
  `layer_names` lists the layers, each layer's group lists its datasets in the attribute `weight_names`
  (keras/src/legacy/saving/legacy_h5_format.py, load_weights_from_hdf5_group). Keys are
  `<layer>/<weight>` with the weight named as Keras 3 names it: Keras 1's `block1_conv1_W_1:0`
  (the published VGG files) and Keras 2's `block1_conv1/kernel:0` both become `block1_conv1/kernel`.
"""

import pathlib
import re

import h5py
import numpy as np
from safetensors.numpy import load_file

from runner.errors import UserError

# Keras 1 named a layer's weights by a letter (keras 1.2 layers/convolutional.py: `_W`, `_b`).
_KERAS1_WEIGHTS = {"W": "kernel", "b": "bias"}
_INDEX_SUFFIX = re.compile(r"(_\d+)?(:\d+)?$")  # TensorFlow's `_1:0` uniquifier and output index


def read(path: str | pathlib.Path) -> dict[str, np.ndarray]:
    path = pathlib.Path(path)
    if not path.is_file():
        raise UserError(f"weights file {path} does not exist")
    readers = {".safetensors": _read_safetensors, ".h5": _read_keras_h5, ".hdf5": _read_keras_h5}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise UserError(f"weights file {path}: unknown format {path.suffix!r}; "
                        f"valid: {', '.join(readers)}")
    return reader(path)


def _read_safetensors(path: pathlib.Path) -> dict[str, np.ndarray]:
    try:
        return load_file(str(path))
    except Exception as error:  # safetensors raises its own SafetensorError, or OSError
        raise UserError(f"weights file {path} is not a readable safetensors file: {error}") from None


def _read_keras_h5(path: pathlib.Path) -> dict[str, np.ndarray]:
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise UserError(f"weights file {path} is not a readable HDF5 file: {error}") from None
    with handle:
        group = handle["model_weights"] if "model_weights" in handle else handle
        layer_names = _attribute_list(group, "layer_names")
        if not layer_names:
            raise UserError(f"weights file {path} is HDF5 but not Keras weights: "
                            "its root has no attribute layer_names")
        tensors = {}
        for layer in layer_names:
            for weight_name in _attribute_list(group[layer], "weight_names"):
                key = f"{layer}/{_weight(layer, weight_name)}"
                if key in tensors:
                    raise UserError(f"weights file {path}: two weights of layer {layer} are both named {key}")
                tensors[key] = np.asarray(group[layer][weight_name])
        return tensors


def _attribute_list(group: h5py.Group, name: str) -> list[str]:
    """A list attribute, which Keras splits into name0, name1, ... past HDF5's 64 KiB header limit
    (legacy_h5_format.py, save_attributes_to_hdf5_group)."""
    if name in group.attrs:
        chunks = [group.attrs[name]]
    else:
        chunks, number = [], 0
        while f"{name}{number}" in group.attrs:
            chunks.append(group.attrs[f"{name}{number}"])
            number += 1
    return [item.decode("utf8") if isinstance(item, bytes) else str(item) for chunk in chunks for item in chunk]


def _weight(layer: str, weight_name: str) -> str:
    """`block1_conv1_W_1:0` -> kernel; `block1_conv1/kernel:0` and `block1_conv1/kernel` -> kernel."""
    name = weight_name.rsplit("/", 1)[-1]
    name = _INDEX_SUFFIX.sub("", name.removeprefix(f"{layer}_"))
    return _KERAS1_WEIGHTS.get(name, name)
