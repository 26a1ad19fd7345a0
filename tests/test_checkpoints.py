"""The run's best and last weights: an epoch that improves writes the weights once, for both files."""

import keras
import numpy as np

from helpers import compose
from runner.training.callbacks import standard_callbacks


def tiny_model() -> keras.Model:
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(2, name="fc")(inputs))


def test_an_improving_epoch_writes_the_weights_once_and_links_the_last_to_the_best(tmp_path, monkeypatch):
    model = tiny_model()
    best, last = standard_callbacks(compose(), tmp_path)[:2]
    writes = []
    original = keras.Model.save_weights
    monkeypatch.setattr(keras.Model, "save_weights",
                        lambda self, path, **options: (writes.append(path), original(self, path, **options)))
    for callback in (best, last):
        callback.set_model(model)
        callback.on_train_begin()

    def epoch_end(epoch: int, val_top1: float) -> None:
        for callback in (best, last):
            callback.on_epoch_end(epoch, {"val_top1": val_top1})

    first = [weight.numpy() for weight in model.weights]
    epoch_end(0, 0.5)
    files = tmp_path / "checkpoints"
    assert len(writes) == 1 and "best" in writes[0]
    assert (files / "best.weights.h5").samefile(files / "last.weights.h5")

    model.set_weights([weight + 1 for weight in first])
    epoch_end(1, 0.4)  # no better: the best stays epoch 0's, the last is written on its own
    assert len(writes) == 2 and "last" in writes[1]
    assert not (files / "best.weights.h5").samefile(files / "last.weights.h5")
    model.load_weights(files / "best.weights.h5")
    assert all(np.array_equal(weight.numpy(), start) for weight, start in zip(model.weights, first))
    model.load_weights(files / "last.weights.h5")
    assert all(np.array_equal(weight.numpy(), start + 1) for weight, start in zip(model.weights, first))
    assert sorted(path.name for path in files.iterdir()) == ["best.weights.h5", "last.weights.h5"]
