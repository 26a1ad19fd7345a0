"""The inference stage's figures: one row per way of deploying the model (Keras, SavedModel, TFLite,
ONNX Runtime), its table, its JSON section and its MLflow metrics (inference.py measures them)."""

import dataclasses
from typing import Optional

from tabulate import tabulate

STAGE = "infer"  # its name in bench.stages, which it is not in by default: exporting takes a while
FORMATS = {  # the row's key in bench.json and MLflow -> what was called, as the table names it
    "keras": "Keras (predict_on_batch)",
    "saved_model": "SavedModel (tf.saved_model.load, serve)",
    "tflite": "TFLite (tf.lite.Interpreter)",
    "onnx": "ONNX Runtime (CPU)",
}
TIMED = ("images_per_second", "latency_ms_median", "latency_ms_p99")  # the figures MLflow records


@dataclasses.dataclass
class InferenceRow:
    batch: int  # images per call for images_per_second
    images_per_second: Optional[float] = None
    latency_ms_median: Optional[float] = None  # of one image per call
    latency_ms_p99: Optional[float] = None
    max_difference: Optional[float] = None  # largest difference of a probability from Keras on the same images
    threads: Optional[int] = None  # as set for this format; None: the library's default (every core)
    reason: Optional[str] = None  # why there are no figures


@dataclasses.dataclass
class Inference:
    rows: dict[str, InferenceRow]  # by FORMATS key, in its order
    described: str  # what was measured, in one line

    def as_json(self) -> dict:
        return {name: dataclasses.asdict(row) for name, row in self.rows.items()}

    def metrics(self) -> dict[str, Optional[float]]:
        """infer_<format>_<figure> (images_per_second, latency_ms_median, latency_ms_p99, max_difference)."""
        return {f"infer_{name}_{figure}": getattr(row, figure)
                for name, row in self.rows.items() for figure in (*TIMED, "max_difference")}

    def not_measured(self) -> dict[str, str]:
        """MLflow tags bench.infer.<format>.not_measured: why a row has no figures."""
        return {f"bench.infer.{name}.not_measured": row.reason for name, row in self.rows.items() if row.reason}

    def table(self) -> str:
        batch = next(iter(self.rows.values())).batch
        rows = [[FORMATS[name], row.images_per_second, row.latency_ms_median, row.latency_ms_p99,
                 row.max_difference,
                 row.threads or "default", row.reason or ""] for name, row in self.rows.items()]
        headers = ["inference", f"images/s (batch {batch})", "latency median (ms, batch 1)", "latency p99 (ms)",
                   "difference from Keras", "threads", "note"]
        table = tabulate(rows, headers=headers, floatfmt=("", ".1f", ".2f", ".2f", ".1e"), missingval="-")
        return f"inference: {self.described}\n{table}"
