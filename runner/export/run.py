"""Export of a stand-alone model (runner/training/stand_alone.py: a run's, a file's, or published
weights) to SavedModel, ONNX or TFLite, each written beside its folder, run on a few images against
Keras, and only then moved into place."""

import pathlib
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig

import builders  # noqa: F401  (registers its layers, LRN and the padded pools, which saved models use)
from runner import disk
from runner.bounds import check_bounds
from runner.errors import UserError
from runner.schema import ExportConfig
from runner.training.stand_alone import stand_alone
from runner.weights import saved

SEED = 0  # the check's images: the same on every export


def export(cfg: DictConfig, run_dir: pathlib.Path) -> tuple[pathlib.Path, float]:
    """Writes cfg.export.format into cfg.export.output (default: the run folder); returns the path and
    the largest difference of a probability from the Keras model on the check images."""
    options = cfg.export
    check_bounds(options, ExportConfig, "export")
    writer, runner, name = FORMATS[options.format.value]
    folder = pathlib.Path(options.output or run_dir)
    target = folder / name
    _check_output(folder, target, options.overwrite)  # before the model: the cheaper mistake first
    model = saved.float32_copy(stand_alone(cfg, "export.model").model)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{name}.partial"
    _remove(partial)
    images = np.random.default_rng(SEED).integers(0, 256, (options.check_images, *model.input_shape[1:]))
    images = images.astype(np.float32)
    expected = model.predict(images, verbose=0)  # before the export: ONNX's needs a model that has run
    try:
        writer(model, partial)
        difference = float(np.abs(runner(partial, images) - expected).max())
        if not difference <= options.tolerance:
            raise UserError(f"export.format={options.format.value}: the export differs from the Keras model by "
                            f"{difference:.2e} (export.tolerance={options.tolerance:g}) on {len(images)} images; "
                            "nothing written")
        _remove(target)
        partial.rename(target)
    finally:
        _remove(partial)
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


def _saved_model(model: keras.Model, path: pathlib.Path) -> None:
    model.export(str(path), format="tf_saved_model", verbose=False)


def _run_saved_model(path: pathlib.Path, images: np.ndarray) -> np.ndarray:
    loaded = tf.saved_model.load(str(path))  # held: its function reads variables the object owns
    return loaded.serve(images).numpy()


def _onnx(model: keras.Model, path: pathlib.Path) -> None:
    try:
        import onnxruntime  # noqa: F401  (the check needs it: fail before converting)
        import tf2onnx  # noqa: F401
    except ImportError as error:
        raise UserError(f"export.format=onnx needs tf2onnx and onnxruntime ({error}): "
                        "pip install -e '.[onnx]'") from None
    model.export(str(path), format="onnx", verbose=False)


def _run_onnx(path: pathlib.Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images})[0]


def _tflite(model: keras.Model, path: pathlib.Path) -> None:
    with tempfile.TemporaryDirectory(prefix="export-") as folder:
        _saved_model(model, pathlib.Path(folder) / "saved_model")
        path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(f"{folder}/saved_model").convert())


def _run_tflite(path: pathlib.Path, images: np.ndarray) -> np.ndarray:
    interpreter = tf.lite.Interpreter(model_path=str(path))
    [given], [returned] = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.resize_tensor_input(given["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(given["index"], images)
    interpreter.invoke()
    return interpreter.get_tensor(returned["index"])


# export.format -> (write the export at a path, run it on images, the name it takes in the folder)
FORMATS = {
    "saved_model": (_saved_model, _run_saved_model, "saved_model"),
    "onnx": (_onnx, _run_onnx, "model.onnx"),
    "tflite": (_tflite, _run_tflite, "model.tflite"),
}


def _remove(path: pathlib.Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
