"""A row's size, layer by layer, counted from shapes alone: what each block family's `size` function
(`Block.size`) fills in, so that a model is measured before any layer is built (`sizes.py`).

A size function mirrors its block function: one `layer` call per Keras layer the block makes, with
that layer's output shape (height, width, channels, or a vector's length) and parameters as Keras
counts them. `kept` says how many tensors of the layer's output size training keeps for the
backward pass, by TensorFlow's registered gradients (tensorflow/python/ops/nn_grad.py, math_grad.py):
a convolution, a dense layer, batch norm and max pooling need their input; ReLU, tanh and max
pooling need their output; additions, concatenations, average pooling and padding before an average
pool need neither. A block's output is always kept: the next row may need it.
"""

import dataclasses
import math


class Unfollowable(ValueError):
    """The shapes stop making sense here (a map that collapses, a convolution on a vector); building
    the row fails too, and the builder's own message names the mistake."""


@dataclasses.dataclass
class Tally:
    shape: tuple[int, ...]  # the current tensor's, per image
    params: int = 0  # as Keras's count_params: batch norm's moving statistics included
    frozen: int = 0  # of which not trainable: no gradient, no optimizer slot
    kept: int = 0  # values per image the backward pass needs from the forward one
    largest: int = 0  # the largest layer output, values per image (the backward pass's working set)
    layers: int = 0  # Keras layers

    def layer(self, shape: tuple[int, ...], params: int = 0, frozen: int = 0, kept: int = 1) -> None:
        if any(size <= 0 for size in shape):
            raise Unfollowable(f"an output of {shape}")
        values = math.prod(shape)
        self.shape = tuple(shape)
        self.params, self.frozen, self.layers = self.params + params, self.frozen + frozen, self.layers + 1
        self.kept += kept * values
        self.largest = max(self.largest, values)

    def feature_map(self) -> tuple[int, int, int]:
        """(height, width, channels): what a convolution or a pooling window needs."""
        if len(self.shape) != 3:
            raise Unfollowable(f"a window on a {len(self.shape)}-d input")
        return self.shape

    def branch(self) -> "Tally":
        """A parallel path from the same input (an inception branch, a shortcut, a side output)."""
        return Tally(self.shape)

    def join(self, branches: list["Tally"], shape: tuple[int, ...], kept: int = 1) -> None:
        """The branches' layers, then the one layer (Concatenate, Add) that merges them into `shape`."""
        for branch in branches:
            self.add(branch)
        self.layer(shape, kept=kept)

    def add(self, other: "Tally") -> None:
        """Count `other`'s layers too, leaving this tally's current shape as it is."""
        self.params, self.frozen, self.layers = self.params + other.params, self.frozen + other.frozen, \
            self.layers + other.layers
        self.kept += other.kept
        self.largest = max(self.largest, other.largest)
