"""Weights this project saved: a run's `model.keras` (saved.py) or a `.weights.h5`, read by layer name.

Keras 3 keeps a model's weights in an HDF5 file (inside the .keras zip as model.weights.h5), one
group per layer whose `vars` group is named by the layer (attribute `name`) and holds its variables
as datasets 0, 1, ... in the layer's own order. Reading them by name, rather than loading the saved
model, lets a new head or another input size take everything that still fits.
"""

import pathlib
import zipfile

import h5py
import numpy as np

from runner.errors import UserError
from runner.weights import saved

KERAS_WEIGHTS = "model.weights.h5"  # the weights' member of a .keras file


def is_ours(path: pathlib.Path) -> bool:
    return path.suffix == ".keras" or path.name.endswith(".weights.h5")


def read(path: pathlib.Path) -> dict[str, list[np.ndarray]]:
    """{layer name: its variables in order} of the layers that have any."""
    if not path.is_file():
        raise UserError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive, archive.open(KERAS_WEIGHTS) as member:
                with h5py.File(member, "r") as file:
                    return _layers(file)
        with h5py.File(path, "r") as file:
            return _layers(file)
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise UserError(f"weights file {path} is not a model saved by Keras 3 ({error})") from None


def _layers(file: h5py.File) -> dict[str, list[np.ndarray]]:
    found = {}

    def visit(path, group):
        if isinstance(group, h5py.Group) and _is_layer_vars(path) and len(group):
            name = str(group.attrs["name"])
            if not name.startswith(saved.PREFIX):  # the stand-alone wrapper's preprocessing, not the network's
                found[name] = [np.asarray(group[str(index)]) for index in range(len(group))]

    file.visititems(visit)
    return found


def _is_layer_vars(path: str) -> bool:
    """layers/<type>/vars, or nested in a stand-alone model's network (saved.py): layers/<type>/
    layers/<type>/vars; not an optimizer's (layers/<type>/optimizer/vars)."""
    parts = path.split("/")
    return len(parts) % 2 == 1 and parts[-1] == "vars" and all(part == "layers" for part in parts[:-1:2])
