"""Keras's ModelCheckpoint, writing each file whole or not at all.

Keras writes the weights straight to the final name, so a full disk (or a kill) mid-write leaves a
truncated best.weights.h5 where the last good one was. This one writes beside it and renames; a
write that fails leaves the previous file as it was.

Where another of these checkpoints wrote the same epoch's weights before it (the best checkpoint of an
epoch that improved, before the last), it links that file instead of writing the weights again: on a
one-epoch run of VGG-16 that halves the time spent writing checkpoints.

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
    """ModelCheckpoint whose file appears only complete, by rename; its options are Keras's. `same_as`:
    a checkpoint that runs before this one at each epoch end; the epochs it wrote, this one links."""

    def __init__(self, filepath, *, same_as: "WholeFileCheckpoint | None" = None, **options):
        super().__init__(filepath, **options)
        self.same_as = same_as
        self.written: tuple[int, pathlib.Path] | None = None  # (epoch, file) of this callback's last write

    def _get_file_path(self, epoch, batch, logs):
        """Where Keras writes: the temporary name beside the final one."""
        return str(disk.partial_name(self._final_path(epoch, batch, logs)))

    def _final_path(self, epoch, batch, logs) -> pathlib.Path:
        return pathlib.Path(super()._get_file_path(epoch, batch, logs))

    def _should_save_model(self, epoch, batch, logs, filepath):
        """Keras's decision (a best checkpoint that did not improve writes nothing), then room for the file."""
        saving = super()._should_save_model(epoch, batch, logs, filepath)
        if saving and self._linked(epoch, pathlib.Path(filepath)):
            return False  # Keras writes nothing: the partial file holds the weights already
        if saving:
            _check_room(self._final_path(epoch, batch, logs), self.model, self.save_weights_only)
        return saving

    def _linked(self, epoch: int, partial: pathlib.Path) -> bool:
        """Whether `partial` is now `same_as`'s file of this epoch: a hard link, or a copy where the
        file system has none."""
        if not (self.same_as and self.same_as.written and self.same_as.written[0] == epoch):
            return False
        source = self.same_as.written[1]
        try:
            os.link(source, partial)
        except OSError:
            _check_room(partial, self.model, self.save_weights_only)
            shutil.copyfile(source, partial)
        return True

    def _save_model(self, epoch, batch, logs):
        final = self._final_path(epoch, batch, logs)
        with disk.written_whole(final) as partial:
            super()._save_model(epoch, batch, logs)  # to the partial name (_get_file_path), if it saves
            wrote = partial.exists()
        if wrote:
            self.written = (epoch, final)


def _check_room(final: pathlib.Path, model: keras.Model, weights_only: bool) -> None:
    """Raises ENOSPC, naming `final`, unless its folder has room for the file beside the one it
    replaces: as large as that one (the same variables), or for a first one the bytes of what is
    saved (the weights; a whole model adds the optimizer's) plus HDF5's metadata."""
    if final.exists():
        needed = final.stat().st_size
    else:
        variables = list(model.weights)
        if not weights_only and model.optimizer:
            variables += list(model.optimizer.variables)
        needed = sum(math.prod(v.shape) * tf.as_dtype(v.dtype).size for v in variables)
        needed += HDF5_BYTES_PER_VARIABLE * len(variables) + HDF5_BYTES_PER_FILE
    if shutil.disk_usage(final.parent).free < needed:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(final))
