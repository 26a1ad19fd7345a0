"""Config files whose aliases would expand past a bound are refused before they are expanded.

YAML's anchors and aliases let a few lines name an exponential number of values (nine levels of
ten aliases each: a billion), and OmegaConf copies every alias into nodes of its own while Hydra
composes: a 1 KB model file once ran for ten minutes at 3.6 GB. The check counts the values the
parsed node graph expands to, each node once (aliases share nodes), before anything is built.

Hydra reads each file with `OmegaConf.load`, which takes its YAML loader from
`omegaconf._utils.get_yaml_loader` at every call and offers no other hook: `loading()` hands it
this module's subclass for as long as a command composes and runs.
"""

import contextlib
import math
from collections.abc import Iterator

import yaml
from omegaconf import _utils as omegaconf_utils

# The zoo's largest file (googlenet.yaml) expands to 335 values; a network spelled out row by row
# stays under a few thousand.
MAX_VALUES = 100_000


@contextlib.contextmanager
def loading() -> Iterator[None]:
    """OmegaConf's YAML loader, bounded, while the block runs."""
    unbounded = omegaconf_utils.get_yaml_loader
    omegaconf_utils.get_yaml_loader = lambda *args, **kwargs: _bounded(unbounded(*args, **kwargs))
    try:
        yield
    finally:
        omegaconf_utils.get_yaml_loader = unbounded


def _bounded(loader: type) -> type:
    class BoundedLoader(loader):
        def get_single_node(self):
            node = super().get_single_node()
            if node is not None and expanded_size(node) > MAX_VALUES:
                raise yaml.composer.ComposerError(
                    problem=f"its aliases expand to more than {MAX_VALUES:,} values (each alias repeats all its "
                            "anchor holds); write the values out, or use fewer nested aliases",
                    problem_mark=node.start_mark)
            return node

    return BoundedLoader


def expanded_size(root: yaml.Node) -> float:
    """How many values `root` holds once every alias is copied out: each distinct node counted once, its
    size kept for every alias that repeats it; infinite for an alias inside its own anchor. Iterative
    (a depth-first walk on a list), so a deep file cannot exhaust the stack."""
    sizes: dict[int, float] = {}
    open_nodes: set[int] = set()  # those whose children are being counted: met again below, a cycle
    pending = [(root, False)]
    while pending:
        node, children_done = pending.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if children_done or not children:
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
            open_nodes.discard(id(node))
            continue
        if id(node) in open_nodes:
            return math.inf
        open_nodes.add(id(node))
        pending.append((node, True))
        pending.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
