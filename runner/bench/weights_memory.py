"""`python -m runner.bench.weights_memory [--layout keras_applications_vgg|torchvision_vgg]`: the memory
that loading VGG-16's published weights takes beyond the model's own.

Writes random float32 tensors under VGG-16's true names and shapes, in the file format of the chosen
source (Keras Applications' vgg16_weights_tf_dim_ordering_tf_kernels.h5, or timm's vgg16.tv_in1k
model.safetensors), into a temporary folder; builds our vgg16 for ImageNet's 1000 classes; and samples
this process's resident memory (runner.bench.memory.PeakRss) while runner.weights.load.load_into
reads, converts and assigns them. Prints the model's bytes, the file's bytes and the load's peak
increase, also as a multiple of the model's bytes. Measure one layout a process: memory a load has
freed may stay with the allocator and hide what a second load takes.
"""

import argparse
import pathlib
import tempfile
from collections.abc import Iterator

import h5py
import numpy as np
from omegaconf import OmegaConf
from safetensors.numpy import save_file

from runner.bench.memory import MIB, PeakRss
from runner.shell.app import CONF
from runner.shell.logs import import_tensorflow_quietly

LAYOUTS = ("keras_applications_vgg", "torchvision_vgg")
IMAGENET_CLASSES = 1000  # ImageNet-1k's, the published classifiers'
# VGG-16, the paper's configuration D: (filters, convolutions) of each block, then the dense layers.
BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
LAST_MAP = (7, 7, 512)  # (H, W, C) before the flatten, at 224x224
DENSE = (4096, 4096, IMAGENET_CLASSES)
SPEC_KEYS = ("name", "input_shape", "blocks")


def keras_applications_shapes() -> Iterator[tuple[str, dict[str, tuple[int, ...]]]]:
    """Each layer of the published .h5 in its order (layer_names), with its weights as Keras 1 named
    them (`<layer>_W_1:0`, `<layer>_b_1:0`): HWIO kernels, (in, out) dense kernels."""
    yield "input_1", {}
    channels = 3
    for block, (filters, convolutions) in enumerate(BLOCKS, start=1):
        for number in range(1, convolutions + 1):
            yield _keras1(f"block{block}_conv{number}", (3, 3, channels, filters))
            channels = filters
        yield f"block{block}_pool", {}
    yield "flatten", {}
    inputs = int(np.prod(LAST_MAP))
    for name, units in zip(("fc1", "fc2", "predictions"), DENSE):
        yield _keras1(name, (inputs, units))
        inputs = units


def _keras1(layer: str, kernel: tuple[int, ...]) -> tuple[str, dict[str, tuple[int, ...]]]:
    return layer, {f"{layer}_W_1:0": kernel, f"{layer}_b_1:0": kernel[-1:]}


def timm_shapes() -> dict[str, tuple[int, ...]]:
    """timm's vgg16.tv_in1k state dict: torchvision's `features` (one nn.Sequential, so a conv's index
    counts the ReLUs and pools before it), fc1 and fc2 as convolutions, the head as a Linear."""
    shapes, index, channels = {}, 0, 3
    for filters, convolutions in BLOCKS:
        for _ in range(convolutions):
            shapes |= {f"features.{index}.weight": (filters, channels, 3, 3), f"features.{index}.bias": (filters,)}
            index, channels = index + 2, filters  # the conv and its ReLU
        index += 1  # the pool
    height, width, _ = LAST_MAP
    first, second, classes = DENSE
    kernels = {"pre_logits.fc1": (first, channels, height, width), "pre_logits.fc2": (second, first, 1, 1),
               "head.fc": (classes, second)}
    for module, kernel in kernels.items():
        shapes |= {f"{module}.weight": kernel, f"{module}.bias": kernel[:1]}
    return shapes


def random_tensor(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32)


def write_keras_applications(path: pathlib.Path, rng: np.random.Generator) -> None:
    """One dataset at a time, so writing holds one tensor (fc1's 411 MB at most), not the file."""
    with h5py.File(path, "w") as handle:
        layers = list(keras_applications_shapes())
        handle.attrs["layer_names"] = [layer.encode() for layer, _ in layers]
        for layer, weights in layers:
            group = handle.create_group(layer)
            group.attrs["weight_names"] = [name.encode() for name in weights]
            for name, shape in weights.items():
                group.create_dataset(name, data=random_tensor(shape, rng))


def write_timm(path: pathlib.Path, rng: np.random.Generator) -> None:
    save_file({key: random_tensor(shape, rng) for key, shape in timm_shapes().items()}, str(path))


WRITERS = {"keras_applications_vgg": (write_keras_applications, "vgg16_weights_tf_dim_ordering_tf_kernels.h5"),
           "torchvision_vgg": (write_timm, "model.safetensors")}


def build_vgg16():
    """Our vgg16 as conf/model/vgg16.yaml has it, its classifier at ImageNet's 1000 classes."""
    import builders  # imports TensorFlow: after import_tensorflow_quietly

    cfg = OmegaConf.create({"model": OmegaConf.load(pathlib.Path(CONF) / "model" / "vgg16.yaml"),
                            "data": {"num_classes": IMAGENET_CLASSES}})
    spec = OmegaConf.to_container(cfg.model, resolve=True)
    return builders.build({key: spec[key] for key in SPEC_KEYS})


def variable_bytes(model) -> int:
    return sum(int(np.prod(variable.shape)) * np.dtype(variable.dtype).itemsize for variable in model.weights)


def measure(layout: str, folder: pathlib.Path) -> dict[str, float]:
    # These import TensorFlow: after import_tensorflow_quietly.
    from runner.weights.families import family_card
    from runner.weights.load import load_into
    from runner.weights.reference import Source

    write, name = WRITERS[layout]
    path = folder / name
    write(path, np.random.default_rng(0))
    built = build_vgg16()
    card = family_card(layout, kind="file", reference=str(path), describes="random tensors", architecture="vgg16")
    with PeakRss() as memory:
        load_into(built, Source(path, card), card.classifier)
    return {"model_mib": variable_bytes(built.model) / MIB, "file_mib": path.stat().st_size / MIB,
            "increase_mib": memory.peak_mib - memory.start_mib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layout", choices=LAYOUTS, default=LAYOUTS[0])
    layout = parser.parse_args().layout
    import_tensorflow_quietly()
    with tempfile.TemporaryDirectory(prefix="weights-memory-") as folder:
        figures = measure(layout, pathlib.Path(folder))
    print(f"layout {layout}: model {figures['model_mib']:.0f} MiB, file {figures['file_mib']:.0f} MiB, "
          f"the load's peak RSS increase {figures['increase_mib']:.0f} MiB "
          f"= {figures['increase_mib'] / figures['model_mib']:.2f} x the model's bytes")


if __name__ == "__main__":
    main()
