"""What each row of a plan will hold, from the shapes alone, before any layer is built: its output
shape, parameters, the activations training keeps and its Keras layers (each block's `size`
function, `tally.py`). The memory check (runner/session/memory_check.py) and the depth limit
below read it; a layer's real parameters are the built model's (`report.py`), and tests hold the
two equal for the zoo.
"""

import dataclasses
import sys

from builders import arguments
from builders.errors import SpecError
from builders.rows import Application
from builders.tally import Tally, Unfollowable

# Keras's functional constructor walks the graph recursively, one Python frame per layer on the way
# from the output back to the input (keras/src/ops/function.py, _build_map_helper). Measured: with
# Python's default limit of 1000 frames a chain of 985 layers builds and one of 1000 raises
# RecursionError. What calls the builder (Hydra, pytest, MLflow's wrappers) takes frames too: this
# many are left to it.
CALLER_FRAMES = 200


@dataclasses.dataclass(frozen=True)
class RowSize:
    application: Application
    output_shape: tuple[int, ...]
    params: int  # as Keras's count_params, batch norm's moving statistics included
    frozen: int  # of which not trainable
    kept: int  # activation values per image the backward pass needs from the forward one
    largest: int  # its largest layer output, values per image
    layers: int  # Keras layers


@dataclasses.dataclass(frozen=True)
class Estimate:
    input_shape: tuple[int, ...]
    rows: list[RowSize]
    # False: the shapes stop making sense after `rows` (a collapsing map, a window on a vector);
    # building fails there too, with the builder's own message, before any later row.
    complete: bool

    @property
    def params(self) -> int:
        return sum(row.params for row in self.rows)

    @property
    def layers(self) -> int:
        return sum(row.layers for row in self.rows) + 1  # and the input layer


def estimate(input_shape: tuple[int, ...], applications: list[Application]) -> Estimate:
    """Each application's size in order; side outputs start from the main path and leave it as it was."""
    main, rows = Tally(tuple(input_shape)), []
    for application in applications:
        tally = main.branch()
        block = application.block
        try:
            block.size(tally, **_with_defaults(application))
        except Unfollowable:
            return Estimate(tuple(input_shape), rows, complete=False)
        rows.append(RowSize(application, tally.shape, tally.params, tally.frozen, tally.kept, tally.largest,
                            tally.layers))
        if not block.side_output:
            main = Tally(tally.shape)
    return Estimate(tuple(input_shape), rows, complete=True)


def max_layers() -> int:
    return sys.getrecursionlimit() - CALLER_FRAMES


def check_depth(spec_rows: int, sized: Estimate) -> None:
    """Refuse, before any layer is built, a model deeper than Keras's graph walk can follow."""
    limit = max_layers()
    if sized.layers > limit:
        raise SpecError(
            f"model.blocks: {spec_rows} rows ({len(sized.rows)} as applied) make {sized.layers} Keras layers; "
            f"Keras builds at most about {limit} here (it walks the graph recursively, within Python's "
            f"recursion limit of {sys.getrecursionlimit()}); use fewer rows or smaller repeats")


def _with_defaults(application: Application) -> dict:
    """The row's arguments, and the block's defaults for the rest, as the block function sees them."""
    accepted = arguments.parameters(application.block.fn)
    return {name: application.args.get(name, parameter.default) for name, parameter in accepted.items()}
