"""Logging the commands share, and a TensorFlow that starts without its C++ chatter."""

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings

# absl's prefix: severity (I, W, E, F), month and day, time (before absl is initialised: "0000 00:00:" and
# the Unix time), thread, file:line.
ABSL_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^]]+\] ")
ABSL_NOT_INITIALISED = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}  # TF_CPP_MIN_LOG_LEVEL's scale
# TFLite's own C++ logger ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU."), which that level does not reach.
TFLITE_LINE = re.compile(r"^(INFO|WARNING|ERROR): ")
# Notes to the libraries' own developers, not to a user of this project's commands: TensorFlow's
# "X (from module) is deprecated and will be removed", its TFLite interpreter's move to LiteRT, and
# Keras's ONNX export probing NumPy for np.object.
DEPRECATION = " is deprecated"
PYTHON_NOTES = ((UserWarning, r"(?s).*tf\.lite\.Interpreter is deprecated"),
                (FutureWarning, r"In the future `np\.object` will be defined"))


def quiet_libraries() -> None:
    """Hydra logs at INFO; TensorFlow's and absl's INFO lines (one per collective under multi_worker)
    are noise there, as are the libraries' deprecation notes (PYTHON_NOTES, DEPRECATION) that an export
    or a run would print."""
    for chatty in ("tensorflow", "absl", "tf2onnx"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    logging.getLogger("tensorflow").addFilter(_not_a_deprecation)
    for category, message in PYTHON_NOTES:
        warnings.filterwarnings("ignore", message, category)
    logging.getLogger("mlflow.store.db.utils").addFilter(_raised_anyway)


def _not_a_deprecation(record: logging.LogRecord) -> bool:
    return DEPRECATION not in record.getMessage()


def _raised_anyway(record: logging.LogRecord) -> bool:
    """MLflow's sqlite store logs each database error with its whole traceback, then raises it again as
    an MlflowException, which the command reports (a full store: one line); its INFO lines stay."""
    return not record.getMessage().startswith("SQLAlchemy database error")


def import_tensorflow_quietly() -> None:
    """Import TensorFlow, holding back the C++ lines below TF_CPP_MIN_LOG_LEVEL that it writes anyway.

    While its libraries load, TensorFlow 2.21 logs through absl before absl is initialised, when
    absl writes every line to stderr whatever the level (oneDNN's notice, "Could not find cuda
    drivers"; twice, once per library). Those lines are caught on the way and the ones the level
    asks to hide are dropped; every other line is written on. A Python error raises as ever.
    """
    if "tensorflow" in sys.modules:
        return
    with native_lines_held_back():
        import tensorflow  # noqa: F401


@contextlib.contextmanager
def native_lines_held_back():
    """What the C++ libraries write to stderr (file descriptor 2) while the block runs, caught and written
    on after it, less their log lines below TF_CPP_MIN_LOG_LEVEL (absl's, and TFLite's, which that
    level does not reach: its XNNPACK notice as an interpreter allocates)."""
    with tempfile.TemporaryFile() as caught:
        sys.stderr.flush()
        stderr = os.dup(2)
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(stderr, 2)
            os.close(stderr)
            caught.seek(0)
            sys.stderr.write("".join(lines_to_show(caught.read().decode(errors="replace"), _min_log_level())))


def lines_to_show(text: str, min_level: int) -> list[str]:
    """The lines of `text` that are not absl's below `min_level` (TF_CPP_MIN_LOG_LEVEL's scale)."""
    lines = text.splitlines(keepends=True)
    return [line for line in lines if _severity(line) is None or _severity(line) >= min_level]


def _severity(line: str):
    if line.startswith(ABSL_NOT_INITIALISED):
        return SEVERITY["W"]
    prefix = ABSL_LINE.match(line) or TFLITE_LINE.match(line)
    return SEVERITY[prefix.group(1)[0]] if prefix else None


def _min_log_level() -> int:
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")
    return int(level) if level.isdigit() else 0
