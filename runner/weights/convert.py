"""Places a weights file's tensors on a built model, as a layout (layouts.py) says, checking everything.

Every source tensor must land on exactly one of our weights with exactly its shape, and every weight
of ours must be set, or nothing is set and a UserError names both sides. With `new_head`, the
classifier (the last dense layer, and auxiliary classifiers, whose layers start with `aux`) is left
freshly initialised and the source's tensors for it are left out: fine-tuning to other classes.
"""

import dataclasses
import math
import re
from collections.abc import Callable, Mapping

import keras
import numpy as np

from runner.errors import UserError
from runner.weights.layouts import IGNORED, KINDS, LAYOUTS, Layout, Row, fill

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
    left_out_shapes: dict[str, Shape]  # source tensors of the classifier, with new_head
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
        lines += _section("left out of the source (the classifier, new_head)", self.left_out_shapes)
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
           new_head: bool = False) -> Loaded:
    """Sets `tensors` (a source's, in its names and layouts) on `model` in place, as `layout` maps them."""
    table = _layout(layout)
    routes, ignored = _routes(model, tensors, table)
    head = _head_layers(model) if new_head else set()
    kept = [route for route in routes if route.layer.name not in head]
    left_out = {route.source: _shape(tensors[route.source]) for route in routes if route.layer.name in head}
    _check_epsilon(kept, table)
    arrays = {route.source: _converted(model, route, tensors[route.source], table) for route in kept}
    variables = {variable.path: variable for variable in model.weights}
    placements = [_placement(route, tensors[route.source], arrays[route.source], variables, table) for route in kept]
    _check_one_source_each(placements)
    fresh = _fresh(model, variables, placements, head, table, len(tensors))
    # Only now, everything checked: a failure above leaves the model as it was.
    for placement in placements:
        variable = variables[placement.target]
        variable.assign(arrays[placement.source].astype(variable.dtype))
    return Loaded(layout, tuple(placements), fresh, left_out, tuple(ignored))


def head_fits(model: keras.Model, tensors: Mapping[str, np.ndarray], layout: str) -> bool:
    """Whether the source's classifier tensors have our classifier's shapes: the same classes, so no
    new head (`assign`'s new_head) is needed."""
    table = _layout(layout)
    routes, _ = _routes(model, tensors, table)
    head, variables = _head_layers(model), {variable.path: variable for variable in model.weights}
    for route in (route for route in routes if route.layer.name in head):
        target = variables.get(f"{route.layer.name}/{route.weight}")
        if target is None or _shape(_converted(model, route, tensors[route.source], table)) != _shape(target):
            return False
    return True


def _layout(name: str) -> Layout:
    if name not in LAYOUTS:
        raise UserError(f"unknown weights layout {name!r}; valid: {', '.join(LAYOUTS)}")
    return LAYOUTS[name]


def _routes(model: keras.Model, tensors: Mapping[str, np.ndarray], table: Layout) -> tuple[list[_Route], list[str]]:
    matched, ignored = _matched(model, tensors, table)
    ordinals = {row: _ordinal_targets(model, tensors, table, row) for row in table.rows if row.ordinal}
    layers = {layer.name: layer for layer in model.layers}
    routes = []
    for key, row, match, param in matched:
        name = ordinals[row][int(match[row.ordinal])] if row.ordinal else fill(row.target, match.groupdict())
        if name not in layers:
            raise UserError(f"source tensor {key} {_shape(tensors[key])} goes to our layer {name}, which "
                            f"model {model.name} does not have (layout {table.name}): is the file for another "
                            "architecture?")
        weight, transform = KINDS[row.kind][param]
        routes.append(_Route(key, layers[name], weight, transform))
    return routes, ignored


def _matched(model: keras.Model, tensors: Mapping[str, np.ndarray], table: Layout) -> tuple[list, list[str]]:
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
        listed = _listing(unplaced, lambda key: f"{key} {_shape(tensors[key])}")
        raise UserError(f"source tensors {listed} match no row of layout {table.name}, so no weight of model "
                        f"{model.name} receives them: is the file for another architecture or layout?")
    return matched, ignored


def _row_for(table: Layout, module: str) -> tuple[Row | None, re.Match | None]:
    for row in table.rows:
        match = re.fullmatch(row.source, module)
        if match:
            return row, match
    return None, None


def _ordinal_targets(model: keras.Model, tensors: Mapping[str, np.ndarray], table: Layout, row: Row) -> dict[int, str]:
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


def _head_layers(model: keras.Model) -> set[str]:
    dense = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    auxiliary = {layer.name for layer in model.layers if layer.name.startswith("aux")}
    return auxiliary | set(dense[-1:])


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


def _map_before_flatten(model: keras.Model, route: _Route) -> Shape:
    """Our (H, W, C) map that the flatten in front of this dense layer reads."""
    producer = next(layer for layer in model.layers if layer.output is route.layer.input)
    if not isinstance(producer, keras.layers.Flatten):
        raise UserError(f"source tensor {route.source} is the first dense layer after a (C, H, W) flatten, "
                        f"but our layer {route.layer.name} of model {model.name} reads {producer.name}, "
                        "not a flatten")
    return _shape(producer.input)[1:]


def _placement(route: _Route, original, array: np.ndarray, variables: dict, table: Layout) -> Placement:
    target = f"{route.layer.name}/{route.weight}"
    source = f"source tensor {route.source} {_shape(original)} (as ours: {_shape(array)})"
    if target not in variables:
        names = ", ".join(variable.path for variable in route.layer.weights) or "none"
        raise UserError(f"{source} goes to our {target}, but layer {route.layer.name} has no weight "
                        f"{route.weight} (its weights: {names}; layout {table.name})")
    if _shape(array) != _shape(variables[target]):
        raise UserError(f"{source} does not fit our {target} {_shape(variables[target])} (layout {table.name}): "
                        "is the file for another architecture or number of classes (new_head)?")
    return Placement(route.source, _shape(original), target, _shape(variables[target]))


def _check_one_source_each(placements: list[Placement]) -> None:
    seen = {}
    for placement in placements:
        if placement.target in seen:
            raise UserError(f"source tensors {seen[placement.target]} and {placement.source} both go to our "
                            f"{placement.target}")
        seen[placement.target] = placement.source


def _fresh(model: keras.Model, variables: dict, placements: list[Placement], head: set[str],
           table: Layout, sources: int) -> dict[str, Shape]:
    """Our weights no source tensor sets: the head's, with new_head; any other is an error."""
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
