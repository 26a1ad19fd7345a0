"""Keras's callbacks a run trains with: best and last weights (each file written whole, then renamed),
early stopping, and the schedule's own (the plateau schedule's ReduceLROnPlateau). Made once by the
caller of the loop, which passes them in."""

import pathlib

import keras
from omegaconf import DictConfig

from runner.training.optim import schedule_callbacks
from runner.training.whole_checkpoint import WholeFileCheckpoint


def standard_callbacks(cfg: DictConfig, run_dir: pathlib.Path) -> list[keras.callbacks.Callback]:
    """Best and last weights in run_dir/checkpoints, early stopping and the plateau schedule, as configured."""
    checkpoints = run_dir / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    best = WholeFileCheckpoint(checkpoints / "best.weights.h5", monitor="val_top1", mode="max",
                               save_best_only=True, save_weights_only=True)
    # After the best (a resume point's counters follow this order), linking the epochs the best wrote.
    callbacks = [best, WholeFileCheckpoint(checkpoints / "last.weights.h5", same_as=best, save_weights_only=True)]
    if cfg.trainer.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_top1", mode="max",
                                                       patience=cfg.trainer.early_stopping_patience))
    return callbacks + schedule_callbacks(cfg)
