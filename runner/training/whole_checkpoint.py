"""Keras's ModelCheckpoint, writing each file whole or not at all.

Keras writes the weights straight to the final name, so a full disk (or a kill) mid-write leaves a
truncated best.weights.h5 where the last good one was. This one writes beside it and renames; a
write that fails leaves the previous file as it was.

It also checks for room first. HDF5 (1.14) cannot close a file whose last write ran out of space,
and the half-closed file crashes the interpreter, at once or at exit: a segfault instead of an error.
"""

import errno
import math
import os
import pathlib
import shutil

import keras
import tensorflow as tf

from runner import disk

HDF5_BYTES_PER_VARIABLE = 8192  # a dataset's metadata: 2-3.5 KB measured for LeNet, ResNet-18, GoogLeNet
HDF5_BYTES_PER_FILE = 65536


class WholeFileCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint whose file appears only complete, by rename; its options are Keras's."""

    def _get_file_path(self, epoch, batch, logs):
        """Where Keras writes: the temporary name beside the final one."""
        return str(disk.partial_name(self._final_path(epoch, batch, logs)))

    def _final_path(self, epoch, batch, logs) -> pathlib.Path:
        return pathlib.Path(super()._get_file_path(epoch, batch, logs))

    def _save_model(self, epoch, batch, logs):
        final = self._final_path(epoch, batch, logs)
        partial = disk.partial_name(final)
        partial.unlink(missing_ok=True)  # a kill's leftover: its presence below means "saved now"
        _check_room(final, self.model)
        with disk.written_whole(final):
            super()._save_model(epoch, batch, logs)  # to the partial name (_get_file_path), if it saves


def _check_room(final: pathlib.Path, model: keras.Model) -> None:
    """Raises ENOSPC, naming `final`, unless its folder has room for the file: as large as the last
    one written there (the same variables), or for a first one their bytes plus HDF5's metadata."""
    variables = list(model.weights) + list(model.optimizer.variables if model.optimizer else [])
    estimate = sum(math.prod(v.shape) * tf.as_dtype(v.dtype).size for v in variables)
    estimate += HDF5_BYTES_PER_VARIABLE * len(variables) + HDF5_BYTES_PER_FILE
    needed = max(estimate, final.stat().st_size if final.exists() else 0)
    if shutil.disk_usage(final.parent).free < needed:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(final))
