"""scikit-learn's handwritten digits: 1,797 real 8x8 digits (UCI optdigits test set, 13 writers), 10 classes."""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from runner.data import source
from runner.mistakes.errors import UserError

SPLIT_SEED = 0  # fixed: the validation digits are the same in every run, whatever trainer.seed


def split(val_fraction: float):
    """((train images, labels), (val images, labels)), stratified: each class keeps its share.

    Images are uint8 [n, 8, 8, 1], 0 to 255: each pixel counts the set pixels of a 4x4 block of
    the 32x32 scan, 0 to 16, scaled to 8 bits as the other datasets' pixels are.
    """
    if not 0 < val_fraction < 1:
        raise UserError(f"data.val_fraction={val_fraction} must be between 0 and 1")
    digits = load_digits()
    images = np.round(digits.images / 16 * 255).astype(np.uint8)[..., np.newaxis]
    labels = digits.target.astype(np.int32)
    train, val = train_test_split(np.arange(len(labels)), test_size=val_fraction, stratify=labels,
                                  random_state=SPLIT_SEED)
    return (images[train], labels[train]), (images[val], labels[val])


def from_config(cfg, training: bool = True) -> source.Source:
    # In memory and cheap to make: `training` false changes nothing here (splits.load sets train aside).
    channels = cfg.model.input_shape[2]
    train, val = split(cfg.data.val_fraction)
    # Gray digits for an RGB model: the same value in every channel.
    return source.Source(
        train=source.tensors(np.repeat(train[0], channels, axis=-1), train[1]),
        val=source.tensors(np.repeat(val[0], channels, axis=-1), val[1]),
        class_names=[str(digit) for digit in range(10)],
    )
