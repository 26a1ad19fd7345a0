"""Per-epoch metrics into the run."""

import numbers
from typing import Any, Optional

import keras

from runner.tracking.run import Run


class EpochLogger(keras.callbacks.Callback):
    """Logs every numeric value Keras reports at the end of an epoch, in one batch, at step=epoch;
    not ReduceLROnPlateau's `learning_rate`, the next epoch's rate (`lr` is the epoch's own)."""

    def __init__(self, run: Run):
        super().__init__()
        self._run = run

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        numeric = {key: value for key, value in (logs or {}).items()
                   if _is_number(value) and key != "learning_rate"}
        self._run.log_metrics(numeric, step=epoch)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
