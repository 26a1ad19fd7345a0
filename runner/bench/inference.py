"""The inference stage (bench.stages=[infer]): the configured model as it would be deployed, in Keras and
in each export runner.export writes (SavedModel, TFLite, ONNX), timed as timm's `benchmark.py --bench
inference` times a model: warm-up calls, then timed ones.

The model is the stand-alone one (runner/weights/saved.py: 0-255 images in, probabilities out) in
float32 in every format: model.weights' as export builds it (runner/session/stand_alone.py), else
the bench session's own network, at its random initialisation, wrapped the same way. Keras is
called as a Keras user serving a batch in hand calls it: model.predict_on_batch, one compiled call
(predict adds a tf.data pipeline and a progress bar per call). Each export is written into a
temporary folder, loaded once, run on the same images as Keras and its largest difference of a
probability reported; beyond bench.infer_tolerance it is not timed. Then images per second:
bench.infer_warmup calls of bench.infer_batch images, then bench.infer_batches timed calls; and
latency: bench.infer_warmup calls of one image, then bench.latency_runs calls timed one by one, their
median and 99th percentile. The images are validation images of the configured data (centre crops).

Threads: TFLite's interpreter as many as the usable cores (it takes one unless told); TensorFlow
and ONNX Runtime their defaults (every core).
"""

import dataclasses
import pathlib
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig

from runner.bench.inference_rows import FORMATS as ROWS
from runner.bench.inference_rows import Inference, InferenceRow
from runner.export.exporting import FORMATS, Predict, onnx_missing, usable_cores
from runner.mistakes.messages import named_first_line
from runner.session.parts import Session
from runner.session.stand_alone import from_weights
from runner.weights import saved

NEEDS_ONNX = "not measured: needs tf2onnx and onnxruntime (pip install -e '.[onnx]')"


def infer(cfg: DictConfig, session: Session) -> Inference:
    """A row for Keras and each export, on the same validation images."""
    bench = cfg.bench
    model = _stand_alone(cfg, session)
    images = _images(session.splits.val, bench.infer_batch)
    expected = model.predict_on_batch(images)  # also runs the model once, which ONNX's export needs
    rows = {"keras": _reported("keras", _timed(model.predict_on_batch, images, bench))}
    with tempfile.TemporaryDirectory(prefix="bench-infer-") as folder:
        for name in ROWS:
            if name != "keras":
                rows[name] = _reported(name, _export_row(name, model, images, expected, bench,
                                                         pathlib.Path(folder)))
    return Inference(rows, _described(cfg, len(images)))


def _stand_alone(cfg: DictConfig, session: Session) -> keras.Model:
    if cfg.model.weights:
        return saved.float32_copy(from_weights(cfg).model)
    return saved.float32_copy(saved.standalone(session.model, session.part.preprocessing))


def _images(val: tf.data.Dataset, count: int) -> np.ndarray:
    """`count` validation images (uint8 centre crops) as float32 0-255; the split repeated if it holds fewer."""
    images, _ = next(iter(val.unbatch().repeat().batch(count).take(1)))
    return images.numpy().astype(np.float32)


def _export_row(name: str, model: keras.Model, images: np.ndarray, expected: np.ndarray, bench: DictConfig,
                folder: pathlib.Path) -> InferenceRow:
    """The export written, loaded, checked against Keras, then timed; a row saying why where it cannot be."""
    threads = usable_cores() if name == "tflite" else None
    if name == "onnx" and onnx_missing():
        return InferenceRow(len(images), threads=threads, reason=NEEDS_ONNX)
    chosen = FORMATS[name]
    print(f"bench: infer: {name}: writing and loading the export ...", flush=True)
    try:
        chosen.write(model, folder / chosen.name)
        predict = chosen.load(folder / chosen.name)
    except Exception as error:  # a converter's refusal (an op it lacks) costs this row, not the others
        return InferenceRow(len(images), threads=threads,
                            reason=f"not measured: the export failed ({named_first_line(error)})")
    difference = float(np.abs(predict(images) - expected).max())
    if not difference <= bench.infer_tolerance:
        return InferenceRow(len(images), max_difference=difference, threads=threads,
                            reason=f"not timed: differs from Keras by {difference:.1e}, more than "
                                   f"bench.infer_tolerance={bench.infer_tolerance:g}")
    return dataclasses.replace(_timed(predict, images, bench), max_difference=difference, threads=threads)


def _timed(predict: Predict, images: np.ndarray, bench: DictConfig) -> InferenceRow:
    """Images per second over bench.infer_batches calls of the whole batch, and the latency of one image
    over bench.latency_runs calls, each after bench.infer_warmup untimed calls of its size."""
    for _ in range(bench.infer_warmup):
        predict(images)
    start = time.perf_counter()
    for _ in range(bench.infer_batches):
        predict(images)
    rate = bench.infer_batches * len(images) / (time.perf_counter() - start)
    one = images[:1]
    for _ in range(bench.infer_warmup):
        predict(one)
    milliseconds = []
    for _ in range(bench.latency_runs):
        start = time.perf_counter()
        predict(one)
        milliseconds.append((time.perf_counter() - start) * 1000)
    return InferenceRow(len(images), rate, float(np.median(milliseconds)), float(np.percentile(milliseconds, 99)))


def _reported(name: str, row: InferenceRow) -> InferenceRow:
    if row.reason:
        print(f"bench: infer: {name}: {row.reason}", flush=True)
    else:
        print(f"bench: infer: {name}: {row.images_per_second:.1f} images/s at batch {row.batch}, latency "
              f"{row.latency_ms_median:.2f} ms (p99 {row.latency_ms_p99:.2f} ms)", flush=True)
    return row


def _described(cfg: DictConfig, count: int) -> str:
    bench = cfg.bench
    height, width, channels = cfg.model.input_shape
    weights = f", model.weights={cfg.model.weights}" if cfg.model.weights else " (random initialisation)"
    return (f"model={cfg.model.name}{weights} stand-alone (0-255 images in, probabilities out), float32 in every "
            f"format; {count} validation images of data={cfg.data.name} at {height}x{width}x{channels}; images/s: "
            f"{bench.infer_batches} calls of {count} after {bench.infer_warmup} warm-up; latency: "
            f"{bench.latency_runs} calls of 1 after {bench.infer_warmup} warm-up; threads: TFLite {usable_cores()} "
            f"(the usable cores), TensorFlow and ONNX Runtime their defaults; exports checked against Keras within "
            f"{bench.infer_tolerance:g}")
