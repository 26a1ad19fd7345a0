"""The article's main lesson: how a convolution or pooling row sets the output size.

out = floor((in + 2*pad - kernel) / stride) + 1 for 'valid' or explicit padding; Keras's 'same'
pads just enough to give ceil(in / stride). A pooling row in ceil mode (Caffe's only mode,
torchvision's GoogLeNet) rounds up instead, so a last, partial window covers the bottom and right
edge: out = ceil((in + 2*pad - kernel) / stride) + 1, less one if that last window would start
in the right padding (torch's rule, aten/src/ATen/native/Pool.h, pooling_output_shape).
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
    ceil_mode: bool = False

    def output_size(self, size: int) -> int:
        if self.padding == "same":
            return math.ceil(size / self.stride)
        if not self.ceil_mode:
            return self._span(size) // self.stride + 1
        return self._ceil_size(size) - self._starts_in_padding(size)

    def rule(self, size: int) -> str:
        out = self.output_size(size)
        if self.padding == "same":
            return f"ceil({size} / {self.stride}) = {out}"
        rounding = "ceil" if self.ceil_mode else "floor"
        note = ", less a last window in the padding" if self.ceil_mode and self._starts_in_padding(size) else ""
        return f"{rounding}(({size} + 2*{self._pad} - {self.kernel}) / {self.stride}) + 1{note} = {out}"

    def pads(self, size: int) -> tuple[int, int]:
        """The cells to pad before and after one axis of `size` so that 'valid' windows give
        `output_size`: the symmetric pad, and after it ceil mode's overhang (0 to stride - 1 cells
        the last window reaches past the padded input). Not for 'same'."""
        reach = (self.output_size(size) - 1) * self.stride + self.kernel  # cells the windows span
        return self._pad, max(self._pad, reach - size - self._pad)

    def _span(self, size: int) -> int:
        return size + 2 * self._pad - self.kernel

    def _ceil_size(self, size: int) -> int:
        return -(-self._span(size) // self.stride) + 1  # ceil for negative spans too

    def _starts_in_padding(self, size: int) -> bool:
        """torch's rule: a last window that would start past the input and its left pad is dropped."""
        return (self._ceil_size(size) - 1) * self.stride >= size + self._pad

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
    return Geometry(kernel, stride, args.get("padding", "valid"), args.get("ceil_mode", False))
