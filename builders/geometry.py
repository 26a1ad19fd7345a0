"""The article's main lesson: how a convolution or pooling row sets the output size.

out = floor((in + 2*pad - kernel) / stride) + 1 for 'valid' or explicit padding; Keras's 'same'
pads just enough to give ceil(in / stride).
"""

import dataclasses
import math
from typing import Any, Mapping

from builders.registry import Block


@dataclasses.dataclass(frozen=True)
class Geometry:
    kernel: int
    stride: int
    padding: str | int

    def output_size(self, size: int) -> int:
        if self.padding == "same":
            return math.ceil(size / self.stride)
        return (size + 2 * self._pad - self.kernel) // self.stride + 1

    def rule(self, size: int) -> str:
        if self.padding == "same":
            return f"ceil({size} / {self.stride}) = {self.output_size(size)}"
        return f"floor(({size} + 2*{self._pad} - {self.kernel}) / {self.stride}) + 1 = {self.output_size(size)}"

    @property
    def _pad(self) -> int:
        return 0 if self.padding == "valid" else self.padding


def of_row(block: Block, args: Mapping[str, Any]) -> Geometry | None:
    """The geometry of a window row (a convolution or a pooling) as applied; None for other blocks."""
    if block.kernel is None:
        return None
    kernel = args[block.kernel]
    # Keras's defaults: a convolution steps by 1, a pooling window by its own size (`Block`).
    stride = args.get("strides") or (kernel if block.stride_defaults_to_kernel else 1)
    return Geometry(kernel, stride, args.get("padding", "valid"))
