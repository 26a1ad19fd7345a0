"""Weights this project saved: a run's `model.keras` (saved.py) or a `.weights.h5`, read by layer name.

Keras 3 keeps a model's weights in an HDF5 file (inside the .keras zip as model.weights.h5), one
group per layer whose `vars` group is named by the layer (attribute `name`) and holds its variables
as datasets 0, 1, ... in the layer's own order. Reading them by name, rather than loading the saved
model, lets a new head or another input size take everything that still fits. The file stays open
while its tensors are read, one when asked for (runner/weights/tensors.py); a .keras file's member is
read in place through h5py, as Keras itself loads it (saving_lib.H5IOStore), never extracted whole.
"""

import contextlib
import pathlib
import zipfile
from collections.abc import Iterator

import h5py
import keras

from runner.mistakes.errors import UserError
from runner.weights import saved
from runner.weights.tensor_map import Tensors

KERAS_WEIGHTS = "model.weights.h5"  # the weights' member of a .keras file


def is_ours(path: pathlib.Path) -> bool:
    return path.suffix == ".keras" or path.name.endswith(".weights.h5")


@contextlib.contextmanager
def opened(path: pathlib.Path, model: keras.Model) -> Iterator[Tensors]:
    """The saved layers' variables as `<layer>/<weight>`, each weight named as the same layer of
    `model` names it; a layer `model` lacks keeps its indices (`<layer>/0`), which no weight receives."""
    if not path.is_file():
        raise UserError(f"weights file {path} does not exist")
    with contextlib.ExitStack() as stack:
        try:
            layers = _layers(_weights_file(path, stack))
        except (OSError, KeyError, zipfile.BadZipFile) as error:
            raise UserError(f"weights file {path} is not a model saved by Keras 3 ({error})") from None
        yield Tensors.of_datasets(_named_by_layers_of(model, layers))


def _weights_file(path: pathlib.Path, stack: contextlib.ExitStack) -> h5py.File:
    """The HDF5 file of the weights, open until `stack` closes."""
    if path.suffix == ".keras":
        archive = stack.enter_context(zipfile.ZipFile(path))
        return stack.enter_context(h5py.File(stack.enter_context(archive.open(KERAS_WEIGHTS)), "r"))
    return stack.enter_context(h5py.File(path, "r"))


def _layers(file: h5py.File) -> dict[str, list[h5py.Dataset]]:
    """{layer name: its variables in order} of the layers that have any."""
    found = {}

    def visit(path, group):
        if isinstance(group, h5py.Group) and _is_layer_vars(path) and len(group):
            name = str(group.attrs["name"])
            if not name.startswith(saved.PREFIX):  # the stand-alone wrapper's preprocessing, not the network's
                found[name] = [group[str(index)] for index in range(len(group))]

    file.visititems(visit)
    return found


def _is_layer_vars(path: str) -> bool:
    """layers/<type>/vars, or nested in a stand-alone model's network (saved.py): layers/<type>/
    layers/<type>/vars; not an optimizer's (layers/<type>/optimizer/vars)."""
    parts = path.split("/")
    return len(parts) % 2 == 1 and parts[-1] == "vars" and all(part == "layers" for part in parts[:-1:2])


def _named_by_layers_of(model: keras.Model, layers: dict[str, list[h5py.Dataset]]) -> dict[str, h5py.Dataset]:
    model_layers = {layer.name: layer for layer in model.layers}
    named = {}
    for layer_name, datasets in layers.items():
        layer = model_layers.get(layer_name)
        weights = layer.weights if layer is not None and len(layer.weights) == len(datasets) else None
        for index, dataset in enumerate(datasets):
            weight = weights[index].path.split("/")[-1] if weights else str(index)
            named[f"{layer_name}/{weight}"] = dataset
    return named
