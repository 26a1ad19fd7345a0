"""Logging the commands share, and a TensorFlow that starts without its C++ chatter."""

import logging
import os
import re
import sys
import tempfile

# absl's prefix: severity (I, W, E, F), month and day, time (before absl is initialised: "0000 00:00:" and
# the Unix time), thread, file:line.
ABSL_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^]]+\] ")
ABSL_NOT_INITIALISED = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}  # TF_CPP_MIN_LOG_LEVEL's scale


def quiet_libraries() -> None:
    """Hydra logs at INFO; TensorFlow's and absl's INFO lines (one per collective under multi_worker)
    are noise there."""
    for chatty in ("tensorflow", "absl", "tf2onnx"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    logging.getLogger("mlflow.store.db.utils").addFilter(_raised_anyway)


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
    with tempfile.TemporaryFile() as caught:
        sys.stderr.flush()
        stderr = os.dup(2)
        os.dup2(caught.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
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
    absl = ABSL_LINE.match(line)
    return SEVERITY[absl.group(1)] if absl else None


def _min_log_level() -> int:
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")
    return int(level) if level.isdigit() else 0
