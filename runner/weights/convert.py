"""Places a weights file's tensors on a built model, as a layout (layouts.py) says, checking everything.

Every source tensor must land on exactly one of our weights with exactly its shape, and every weight
of ours must be set, or nothing is set and a UserError names both sides. With a `head` (the layers of
the classifier rows, `head_layers`), those layers are left freshly initialised and the source's
tensors for them are left out: fine-tuning to other classes.

Two passes, so that a load holds at most one source tensor and its converted form beside the model's
own weights: the first checks everything from the tensors' shapes alone, reading none; only once
every check has passed does the second read, convert and assign one tensor at a time (there only the
reading itself can still fail: a file removed or damaged while it loads). A conversion's shape is
found by running it on a stand-in of the source's shape whose every stride is 0 (np.broadcast_to of
one zero): the layouts' transforms only transpose, index and reshape, which numpy does on such an
array without copying, so the check allocates nothing of the tensor's size and fails with the very
error the real array would.
"""

import dataclasses
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence

import keras
import numpy as np

from builders.names import row_of_layer
from runner.mistakes.errors import UserError
from runner.weights.layouts import IGNORED, KINDS, LAYOUTS, Layout, Row, fill
from runner.weights.tensor_map import Tensors, as_tensors

Shape = tuple[int, ...]
_LISTED = 5  # an error lists this many of the offending tensors, then counts the rest


@dataclasses.dataclass(frozen=True)
class Placement:
    source: str
    source_shape: Shape
    target: str  # our weight's path, `<layer>/<weight>`
    target_shape: Shape


@dataclasses.dataclass(frozen=True)
class Loaded:
    """What assign did: each weight of ours loaded (and from what), left fresh, or left out of the source."""

    layout: str
    placements: tuple[Placement, ...]
    fresh_shapes: dict[str, Shape]  # our weights left as initialised
    left_out_shapes: dict[str, Shape]  # source tensors of the classifier, with a new head
    ignored: tuple[str, ...]  # source tensors with no counterpart by design (num_batches_tracked)

    @property
    def loaded(self) -> list[str]:
        return [placement.target for placement in self.placements]

    @property
    def fresh(self) -> list[str]:
        return list(self.fresh_shapes)

    @property
    def left_out(self) -> list[str]:
        return list(self.left_out_shapes)

    def summary(self) -> str:
        """A plain-text account, for the run's weights.txt."""
        lines = [f"layout: {self.layout} ({LAYOUTS[self.layout].describes})",
                 f"loaded: {len(self.placements)} of our weights, "
                 f"{len(self.placements) + len(self.fresh_shapes)} in all",
                 f"ignored source tensors (no counterpart by design): {len(self.ignored)}"]
        lines += _section("fresh (initialised here, not loaded)", self.fresh_shapes)
        lines += _section("left out of the source (the classifier: a new head)", self.left_out_shapes)
        lines.append("placements (ours <- source):")
        lines += [f"  {p.target} {p.target_shape} <- {p.source} {p.source_shape}" for p in self.placements]
        return "\n".join(lines) + "\n"


def _section(title: str, shapes: dict[str, Shape]) -> list[str]:
    return [f"{title}: {len(shapes)}"] + [f"  {key} {shape}" for key, shape in shapes.items()]


@dataclasses.dataclass(frozen=True)
class _Route:
    """One source tensor on its way to one of our weights, before its array is converted."""

    source: str
    layer: keras.layers.Layer
    weight: str
    transform: Callable


def assign(model: keras.Model, tensors: Mapping[str, np.ndarray], layout: str, *,
           head: Collection[str] = ()) -> Loaded:
    """Sets `tensors` (a source's, in its names and layouts) on `model` in place, as `layout` maps them;
    the layers named in `head` (a new head, `head_layers`) keep their initial weights; empty, all load."""
    table, source = _layout(layout), as_tensors(tensors)
    routes, ignored = _routes(model, source, table)
    kept = [route for route in routes if route.layer.name not in head]
    left_out = {route.source: source.shape(route.source) for route in routes if route.layer.name in head}
    _check_epsilon(kept, table)
    variables = {variable.path: variable for variable in model.weights}
    placements = [_placement(model, route, source.shape(route.source), variables, table) for route in kept]
    _check_one_source_each(placements)
    fresh = _fresh(model, variables, placements, head, table, len(source))
    # Only now, everything checked: a failure above leaves the model as it was.
    for route, placement in zip(kept, placements):
        _set(variables[placement.target], _converted(model, route, source[route.source], table))
    return Loaded(layout, tuple(placements), fresh, left_out, tuple(ignored))


def head_layers(model: keras.Model, classifier: Sequence[str]) -> set[str]:
    """The layers of the classifier rows `classifier` (the weights' card's, e.g. ("fc8",), or GoogLeNet's
    ("classifier", "aux1", "aux2")). A row names its layers `<row>` or `<row>_<suffix>`, as Keras
    Applications do (builders/names.py, whose row_of_layer reads that rule; inception.py's
    aux_classifier makes aux1_pool, aux1_proj_conv, aux1_flatten, aux1_fc, aux1_dropout, aux1_logits)."""
    return {layer.name for layer in model.layers if row_of_layer(layer.name, classifier) is not None}


def head_fits(model: keras.Model, tensors: Mapping[str, np.ndarray], layout: str,
              classifier_rows: Sequence[str]) -> bool:
    """Whether the source's tensors for the classifier rows have our classifier's shapes: the same
    classes, so no new head (`assign`'s head) is needed. Reads no tensor."""
    table, source = _layout(layout), as_tensors(tensors)
    routes, _ = _routes(model, source, table)
    head, variables = head_layers(model, classifier_rows), {variable.path: variable for variable in model.weights}
    for route in (route for route in routes if route.layer.name in head):
        target = variables.get(f"{route.layer.name}/{route.weight}")
        if target is None or _converted_shape(model, route, source.shape(route.source), table) != _shape(target):
            return False
    return True


def _layout(name: str) -> Layout:
    if name not in LAYOUTS:
        raise UserError(f"unknown weights layout {name!r}; valid: {', '.join(LAYOUTS)}")
    return LAYOUTS[name]


def _routes(model: keras.Model, tensors: Tensors, table: Layout) -> tuple[list[_Route], list[str]]:
    matched, ignored = _matched(model, tensors, table)
    ordinals = {row: _ordinal_targets(model, tensors, table, row) for row in table.rows if row.ordinal}
    layers = {layer.name: layer for layer in model.layers}
    routes = []
    for key, row, match, param in matched:
        name = ordinals[row][int(match[row.ordinal])] if row.ordinal else fill(row.target, match.groupdict())
        if name not in layers:
            raise UserError(f"source tensor {key} {tensors.shape(key)} goes to our layer {name}, which "
                            f"model {model.name} does not have (layout {table.name}): is the file for another "
                            "architecture?")
        weight, transform = KINDS[row.kind][param]
        routes.append(_Route(key, layers[name], weight, transform))
    return routes, ignored


def _matched(model: keras.Model, tensors: Tensors, table: Layout) -> tuple[list, list[str]]:
    """Each source key with its row, the row's match and the param; and the keys ignored by design."""
    matched, ignored, unplaced = [], [], []
    for key in tensors:
        module, param = table.split(key)
        row, match = _row_for(table, module)
        if row is None or param not in KINDS[row.kind]:
            unplaced.append(key)
        elif KINDS[row.kind][param] is IGNORED:
            ignored.append(key)
        else:
            matched.append((key, row, match, param))
    if unplaced:
        listed = _listing(unplaced, lambda key: f"{key} {tensors.shape(key)}")
        raise UserError(f"source tensors {listed} match no row of layout {table.name}, so no weight of model "
                        f"{model.name} receives them: is the file for another architecture or layout?")
    return matched, ignored


def _row_for(table: Layout, module: str) -> tuple[Row | None, re.Match | None]:
    for row in table.rows:
        match = re.fullmatch(row.source, module)
        if match:
            return row, match
    return None, None


def _ordinal_targets(model: keras.Model, tensors: Tensors, table: Layout, row: Row) -> dict[int, str]:
    """The source's module numbers under `row`, sorted, paired with our layers matching its target, in order."""
    matches = (re.fullmatch(row.source, table.split(key)[0]) for key in tensors)
    modules = {int(match[row.ordinal]): match[0] for match in matches if match}
    numbers = sorted(modules)
    ours = [layer.name for layer in model.layers if re.fullmatch(row.target, layer.name)]
    if len(numbers) != len(ours):
        raise UserError(f"the source has {len(numbers)} modules {_listing([modules[n] for n in numbers], str)}, "
                        f"model {model.name} {len(ours)} layers {_listing(ours, str)}, which layout {table.name} "
                        "pairs one to one, in order: is the file for another architecture?")
    return {number: name for number, name in zip(numbers, ours)}


def _check_epsilon(routes: list[_Route], table: Layout) -> None:
    """Batch norm divides by sqrt(var + epsilon): with another epsilon, the same weights give other outputs."""
    if table.bn_epsilon is None:
        return
    for route in routes:
        epsilon = getattr(route.layer, "epsilon", None)
        if epsilon is not None and not math.isclose(epsilon, table.bn_epsilon, rel_tol=1e-6):
            raise UserError(f"our layer {route.layer.name} has batch-norm epsilon {epsilon:g}, the source "
                            f"(layout {table.name}) {table.bn_epsilon:g}, so source tensor {route.source} "
                            "would give other outputs there: build the model with the source's epsilon")


def _converted(model: keras.Model, route: _Route, array: np.ndarray, table: Layout) -> np.ndarray:
    try:
        return np.asarray(route.transform(np.asarray(array), lambda: _map_before_flatten(model, route)))
    except ValueError as error:  # a reshape that cannot hold: the shapes disagree
        ours = f"{route.layer.name}/{route.weight}"
        variable = next((v for v in route.layer.weights if v.path == ours), None)
        shape = _shape(variable) if variable is not None else "(none)"
        raise UserError(f"source tensor {route.source} {_shape(array)} does not fit our {ours} {shape} "
                        f"(layout {table.name}): {error}") from None


def _converted_shape(model: keras.Model, route: _Route, shape: Shape, table: Layout) -> Shape:
    """The shape `_converted` gives a tensor of `shape`, from a zero-strided stand-in (the module's
    docstring says why that is exact and costs no memory)."""
    return _shape(_converted(model, route, np.broadcast_to(np.zeros((), np.float32), shape), table))


def _set(variable: keras.Variable, array: np.ndarray) -> None:
    """One converted tensor on its variable; a function, so that the array is freed as it returns."""
    variable.assign(array.astype(variable.dtype, copy=False))


def _map_before_flatten(model: keras.Model, route: _Route) -> Shape:
    """Our (H, W, C) map that the flatten in front of this dense layer reads."""
    producer = next(layer for layer in model.layers if layer.output is route.layer.input)
    if not isinstance(producer, keras.layers.Flatten):
        raise UserError(f"source tensor {route.source} is the first dense layer after a (C, H, W) flatten, "
                        f"but our layer {route.layer.name} of model {model.name} reads {producer.name}, "
                        "not a flatten")
    return _shape(producer.input)[1:]


def _placement(model: keras.Model, route: _Route, original: Shape, variables: dict, table: Layout) -> Placement:
    target = f"{route.layer.name}/{route.weight}"
    converted = _converted_shape(model, route, original, table)
    source = f"source tensor {route.source} {original} (as ours: {converted})"
    if target not in variables:
        names = ", ".join(variable.path for variable in route.layer.weights) or "none"
        raise UserError(f"{source} goes to our {target}, but layer {route.layer.name} has no weight "
                        f"{route.weight} (its weights: {names}; layout {table.name})")
    if converted != _shape(variables[target]):
        raise UserError(f"{source} does not fit our {target} {_shape(variables[target])} (layout {table.name}): "
                        "is the file for another architecture or number of classes (a new head)?")
    return Placement(route.source, original, target, _shape(variables[target]))


def _check_one_source_each(placements: list[Placement]) -> None:
    seen = {}
    for placement in placements:
        if placement.target in seen:
            raise UserError(f"source tensors {seen[placement.target]} and {placement.source} both go to our "
                            f"{placement.target}")
        seen[placement.target] = placement.source


def _fresh(model: keras.Model, variables: dict, placements: list[Placement], head: Collection[str],
           table: Layout, sources: int) -> dict[str, Shape]:
    """Our weights no source tensor sets: the head's, with a new head; any other is an error."""
    placed = {placement.target for placement in placements}
    fresh = {path: _shape(variable) for path, variable in variables.items() if path not in placed}
    unset = [path for path in fresh if _layer_of(path) not in head]
    if unset:
        # The source module that set the layer's other weights, if one did, is where a tensor is short.
        modules = {_layer_of(p.target): p.source.rpartition(table.separator)[0] for p in placements}
        hints = {path: f" (the layer's other weights: {modules[_layer_of(path)]})"
                 if _layer_of(path) in modules else "" for path in unset}
        listed = _listing(unset, lambda path: f"{path} {fresh[path]}{hints[path]}")
        raise UserError(f"our weights {listed} of model {model.name} are set by none of the {sources} source "
                        f"tensors (layout {table.name}): is the file for another architecture?")
    return fresh


def _layer_of(path: str) -> str:
    return path.split("/")[0]


def _listing(items: list[str], describe: Callable[[str], str]) -> str:
    listed = ", ".join(describe(item) for item in items[:_LISTED])
    return listed + (f" and {len(items) - _LISTED} more" if len(items) > _LISTED else "")


def _shape(tensor) -> Shape:
    return tuple(int(size) if size is not None else None for size in tensor.shape)
