"""Export of a stand-alone model (runner/session/stand_alone.py: a run's, a file's, or published
weights) to SavedModel, ONNX or TFLite, each written beside its folder, run on a few images against
Keras, and only then moved into place. Each format's loader gives a function to call many times
(the bench's inference stage times them)."""

import dataclasses
import os
import pathlib
import tempfile
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig

import builders  # noqa: F401  (registers its layers, LRN and the padded pools, which saved models use)
from runner import disk
from runner.config.bounds import check_bounds
from runner.config.schema import ExportConfig
from runner.mistakes.errors import UserError
from runner.session.stand_alone import stand_alone
from runner.shell.logs import native_lines_held_back
from runner.weights import saved

SEED = 0  # the check's images: the same on every export
Predict = Callable[[np.ndarray], np.ndarray]  # float32 images, 0-255 [B, H, W, C] -> probabilities [B, classes]


def export(cfg: DictConfig, run_dir: pathlib.Path) -> tuple[pathlib.Path, float]:
    """Writes cfg.export.format into cfg.export.output (default: the run folder); returns the path and
    the largest difference of a probability from the Keras model on the check images."""
    options = cfg.export
    check_bounds(options, ExportConfig, "export")
    chosen = FORMATS[options.format.value]
    folder = pathlib.Path(options.output or run_dir)
    target = folder / chosen.name
    _check_output(folder, target, options.overwrite)  # before the model: the cheaper mistake first
    model = saved.float32_copy(stand_alone(cfg, "export.model").model)
    folder.mkdir(parents=True, exist_ok=True)
    images = np.random.default_rng(SEED).integers(0, 256, (options.check_images, *model.input_shape[1:]))
    images = images.astype(np.float32)
    # Before the export (ONNX's needs a model that has run); called eagerly: predict's tf.function, traced
    # anew for every model a process exports, would have TensorFlow warn of retracing.
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    with disk.written_whole(target) as partial:
        chosen.write(model, partial)
        difference = float(np.abs(chosen.load(partial)(images) - expected).max())
        if not difference <= options.tolerance:
            raise UserError(f"export.format={options.format.value}: the export differs from the Keras model by "
                            f"{difference:.2e} (export.tolerance={options.tolerance:g}) on {len(images)} images; "
                            "nothing written")
    return target, difference


def _check_output(folder: pathlib.Path, target: pathlib.Path, overwrite: bool) -> None:
    """export.output is a folder (made if absent) where the export may be written, and an earlier
    export there is replaced only when asked."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"export.output={folder} is a file; give the folder that receives {target.name}")
    if target.exists() and not overwrite:
        raise UserError(f"export.output={folder} already holds {target.name}; pass export.overwrite=true to "
                        "replace it, or give another folder")
    unwritable = disk.unwritable(folder)
    if unwritable:
        raise UserError(f"export.output={folder}: {unwritable} is not writable; give a folder you can write to")


def usable_cores() -> int:
    """The cores this process may run on (its affinity), which TFLite's interpreter is told to use:
    unlike TensorFlow and ONNX Runtime, it takes one thread unless told otherwise."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def onnx_missing() -> Optional[str]:
    """Why ONNX cannot be written and run here (tf2onnx or onnxruntime not installed), or None."""
    try:
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError as error:
        return str(error)
    return None


def _saved_model(model: keras.Model, path: pathlib.Path) -> None:
    model.export(str(path), format="tf_saved_model", verbose=False)


def _load_saved_model(path: pathlib.Path) -> Predict:
    loaded = tf.saved_model.load(str(path))  # held by the closure: its function reads variables the object owns
    return lambda images: loaded.serve(images).numpy()


def _onnx(model: keras.Model, path: pathlib.Path) -> None:
    missing = onnx_missing()  # the check needs onnxruntime: fail before converting
    if missing:
        raise UserError(f"export.format=onnx needs tf2onnx and onnxruntime ({missing}): pip install -e '.[onnx]'")
    model.export(str(path), format="onnx", verbose=False)


def _load_onnx(path: pathlib.Path) -> Predict:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda images: session.run(None, {name: images})[0]


def _tflite(model: keras.Model, path: pathlib.Path) -> None:
    with tempfile.TemporaryDirectory(prefix="export-") as folder:
        _saved_model(model, pathlib.Path(folder) / "saved_model")
        path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(f"{folder}/saved_model").convert())


def _load_tflite(path: pathlib.Path) -> Predict:
    """One interpreter per batch shape, allocated on its first call: resizing one interpreter back and
    forth would allocate its tensors again on every change."""
    interpreters: dict[tuple, tf.lite.Interpreter] = {}

    def predict(images: np.ndarray) -> np.ndarray:
        if images.shape not in interpreters:
            with native_lines_held_back():  # TFLite's INFO line as it allocates, which its level does not reach
                interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=usable_cores())
                interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], images.shape)
                interpreter.allocate_tensors()
            interpreters[images.shape] = interpreter
        interpreter = interpreters[images.shape]
        [given], [returned] = interpreter.get_input_details(), interpreter.get_output_details()
        interpreter.set_tensor(given["index"], images)
        interpreter.invoke()
        return interpreter.get_tensor(returned["index"])

    return predict


@dataclasses.dataclass(frozen=True)
class Format:
    write: Callable[[keras.Model, pathlib.Path], None]  # the export of a model at a path
    load: Callable[[pathlib.Path], Predict]  # the export at a path, loaded once, as a function to call many times
    name: str  # what the export is called in its folder


FORMATS = {  # export.format -> how it is written, loaded and named
    "saved_model": Format(_saved_model, _load_saved_model, "saved_model"),
    "onnx": Format(_onnx, _load_onnx, "model.onnx"),
    "tflite": Format(_tflite, _load_tflite, "model.tflite"),
}
