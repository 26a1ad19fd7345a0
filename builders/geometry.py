"""The article's main lesson: how a convolution or pooling row sets the output size.

out = floor((in + 2*pad - kernel) / stride) + 1 for 'valid' or explicit padding; Keras's 'same'
pads just enough to give ceil(in / stride).
"""

import dataclasses
import math
from typing import Any, Mapping

# Rows whose output size follows the rule, and the argument that holds their kernel size.
KERNEL_ARGUMENT = {"conv": "kernel_size", "maxpool": "pool_size", "avgpool": "pool_size"}


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


def of_row(block_type: str, args: Mapping[str, Any]) -> Geometry | None:
    """The geometry of a conv or pooling row as applied; None for other blocks."""
    kernel_argument = KERNEL_ARGUMENT.get(block_type)
    if kernel_argument is None:
        return None
    kernel = args[kernel_argument]
    # Keras's defaults: a convolution steps by 1, a pooling window by its own size.
    stride = args.get("strides") or (1 if block_type == "conv" else kernel)
    return Geometry(kernel, stride, args.get("padding", "valid"))
