"""A source's tensors by name, each read from its file only when looked up, its shape known without
reading it: what the readers (tensors.py, ours.py, caffe.py) hand to the conversion (convert.py), so a
load holds one tensor of a file at a time, not the whole file beside the model."""

from collections.abc import Callable, Iterator, Mapping

import h5py
import numpy as np


class Tensors(Mapping[str, np.ndarray]):
    """A source's tensors by name: each read from its file when looked up, its shape known without
    reading it. Iterating over keys reads nothing; `values()` and `items()` read every tensor."""

    def __init__(self, shapes: Mapping[str, tuple[int, ...]], read: Callable[[str], np.ndarray]):
        self._shapes = dict(shapes)
        self._read = read

    @classmethod
    def in_memory(cls, arrays: Mapping[str, np.ndarray]) -> "Tensors":
        return cls({key: tuple(array.shape) for key, array in arrays.items()}, arrays.__getitem__)

    @classmethod
    def of_datasets(cls, datasets: Mapping[str, h5py.Dataset]) -> "Tensors":
        """HDF5 datasets of a file that stays open while the tensors are read."""
        return cls({key: dataset.shape for key, dataset in datasets.items()},
                   lambda key: np.asarray(datasets[key]))

    def shape(self, key: str) -> tuple[int, ...]:
        return self._shapes[key]

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._shapes:
            raise KeyError(key)
        return self._read(key)

    def __contains__(self, key: object) -> bool:
        return key in self._shapes  # Mapping's own would read the tensor to find out

    def __iter__(self) -> Iterator[str]:
        return iter(self._shapes)

    def __len__(self) -> int:
        return len(self._shapes)


def as_tensors(arrays: Mapping[str, np.ndarray]) -> Tensors:
    """`arrays` as Tensors: a file's as they are, arrays already in memory wrapped."""
    return arrays if isinstance(arrays, Tensors) else Tensors.in_memory(arrays)
