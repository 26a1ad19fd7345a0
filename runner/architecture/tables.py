"""Builds a model from the config and renders its report as a terminal table, Markdown or JSON.

RF is the receptive field of a row's output (the input square, in pixels per side, that one unit
sees) and jump its effective stride (input pixels between neighbouring units), from
r_out = r_in + (k - 1) * j_in and j_out = j_in * s. Rows without a spatial map (global average
pooling, flatten, dense, auxiliary classifiers) see the whole input: "global" in the table, null in
JSON.

A model's classifier is sized by `data=` (its `units: ${data.num_classes}`), so the header names the
class count and the dataset that set it: the zoo's table counts a 1000-way head (data=imagenet), and
describe's default data=digits gives 10 classes and fewer parameters.
"""

import dataclasses
import json
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue
from tabulate import tabulate

import builders
from builders.report import Report, report
from runner.mistakes.errors import UserError

HEADERS = ["#", "name", "type", "kernel / stride / pad", "input", "output", "output size", "RF", "jump",
           "params", "MACs"]
LEGEND = ("RF: receptive field, the input pixels (per side) one output unit sees; jump: input pixels "
          "between neighbouring units; global: the whole input")

PAPERS_CLASSES = 1000  # the zoo's table counts ImageNet's 1000-way heads, as the papers do

# Keys of the model node that say how a run starts from it, not what it is (runner/weights, freeze).
RUN_KEYS = ("weights", "freeze")


def model_spec(cfg: DictConfig) -> dict[str, Any]:
    """The model node as the plain mapping builders take, interpolations (num_classes) resolved."""
    try:
        spec = OmegaConf.to_container(cfg.model, resolve=True)
        return {key: value for key, value in spec.items() if key not in RUN_KEYS}
    except (MissingMandatoryValue, InterpolationToMissingValueError) as error:
        missing = str(error).split("Missing mandatory value: ")[-1].splitlines()[0]
        raise UserError(f"{missing} is not set ({error.full_key} needs it); pass {missing}=...") from None


@dataclasses.dataclass
class Described(Report):
    """A report with the classes its head was sized for, and the `data=` choice that set them."""
    num_classes: int | None = None
    data: str | None = None


def describe(cfg: DictConfig) -> Described:
    return described(builders.build(model_spec(cfg)), cfg)


def described(built, cfg: DictConfig) -> Described:
    """The report of `built` (a BuiltModel of `cfg`'s model), with the classes `cfg`'s data gives it."""
    return Described(**vars(report(built)), num_classes=OmegaConf.select(cfg, "data.num_classes", default=None),
                     data=OmegaConf.select(cfg, "data.name", default=None))


def render(result: Described, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result.to_dict(), indent=2)
    rows = [_cells(number, layer) for number, layer in enumerate(result.layers, start=1)]
    table = tabulate(rows, HEADERS, tablefmt="github" if fmt == "markdown" else "simple",
                     colalign=("right",) + ("left",) * 6 + ("right",) * 4)
    totals = (
        f"total params {result.total_params:,} (trainable {result.trainable_params:,}), "
        f"MACs {result.macs:,} ({giga(result.macs)}) per image"
    )
    if result.inference_macs != result.macs:
        totals += f", {giga(result.inference_macs)} without the training-only side outputs"
    title = f"{result.model}, input {_shape(result.input_shape)}{_head(result)}"
    notes = [note for note in (totals, _last_map(result), LEGEND) if note]
    if fmt == "markdown":
        return f"## {title}\n\n{table}\n\n" + "\n\n".join(notes) + "\n"
    return f"{title}\n{table}\n" + "\n".join(notes) + "\n"


def _head(result: Described) -> str:
    """Why the parameters differ from the zoo's table: the head's width follows data=."""
    classes = result.num_classes
    if classes is None:
        return ""
    note = f", head sized for {classes} classes (data={result.data}"
    if classes == PAPERS_CLASSES:
        return note + ")"
    return note + f"; data=imagenet or data.num_classes={PAPERS_CLASSES} for the 1000-way head the zoo table counts)"


def _cells(number: int, layer) -> list:
    geometry = ""
    if layer.kernel is not None:
        padding = f"pad {layer.padding}" if isinstance(layer.padding, int) else layer.padding
        geometry = f"{layer.kernel}x{layer.kernel} / {layer.stride} / {padding}"
    return [
        number, layer.name, layer.type, geometry, _shape(layer.input_shape),
        _shape(layer.output_shape), layer.size_rule or "",
        "global" if layer.receptive_field is None else layer.receptive_field,
        "" if layer.jump is None else layer.jump,
        f"{layer.params:,}", f"{layer.macs:,}",
    ]


def _last_map(result: Report) -> str:
    """What the network's last feature map sees, the article's "each unit of conv5 sees 163x163"."""
    spatial = [layer for layer in result.layers if layer.receptive_field is not None]
    if not spatial:
        return ""
    last = spatial[-1]
    return (f"last feature map {last.name} ({_shape(last.output_shape)}): each unit sees "
            f"{last.receptive_field}x{last.receptive_field} input pixels, its neighbours {last.jump} apart")


def giga(count: int) -> str:
    return f"{count / 1e9:.2f} G" if count >= 1e8 else f"{count / 1e6:.2f} M"


def _shape(shape: list[int]) -> str:
    return "x".join(str(size) for size in shape)
