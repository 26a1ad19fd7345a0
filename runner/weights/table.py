"""The table of published weights in docs/weights.md, made from their cards (runner/weights/published.py), so
the documentation cannot drift from what the code loads (a test compares them; torchvision makes its
weights tables from `Weights.meta` the same way). Print it with `python -m runner.weights.table`."""

import pathlib
import urllib.parse

from runner.data.pipeline import IMAGENET
from runner.weights.card import WeightsCard
from runner.weights.families import CAFFE
from runner.weights.published import IMAGENET_REFERENCE, Published, published_weights

# Who publishes the files of a layout fetched by URL (the hub's name themselves).
PUBLISHERS = {"keras_applications_vgg": "Keras Applications", "caffe_alexnet": "BVLC, Caffe",
              "caffe_googlenet": "BVLC, Caffe"}
HEADER = ("| model | `model.weights=` | file | licence, as published | inputs | top-1 / top-5 (%), as published |\n"
          "|---|---|---|---|---|---|")


def markdown_table() -> str:
    rows = [_row(model, tag, entry, first=index == 0) for model, entries in published_weights().items()
            for index, (tag, entry) in enumerate(entries.items())]
    return "\n".join([HEADER, *rows])


def _row(model: str, tag: str, entry: Published, first: bool) -> str:
    card = entry.card
    names = f"`{IMAGENET_REFERENCE}`, `{IMAGENET_REFERENCE}:{tag}`" if first else f"`{IMAGENET_REFERENCE}:{tag}`"
    metrics = f"{card.metrics.top1} / {card.metrics.top5}"
    return f"| `{model}` | {names} | {_file(entry)} | {card.licence} | {_inputs(card)} | {metrics} |"


def _file(entry: Published) -> str:
    if entry.hub:
        return f"[`{entry.hub}`](https://huggingface.co/{entry.hub})"
    name = pathlib.PurePosixPath(urllib.parse.urlparse(entry.url).path).name
    return f"[`{name}`]({entry.url}) ({PUBLISHERS[entry.card.layout]})"


def _inputs(card: WeightsCard) -> str:
    inputs = card.preprocessing
    if inputs == IMAGENET:
        said = "RGB, ImageNet mean and std"
    elif inputs.bgr and inputs.std == CAFFE.std:  # Caffe's 0-255 scale: the mean pixel, listed B, G, R
        said = f"BGR, the mean pixel {', '.join(f'{value * 255:g}' for value in reversed(inputs.mean))} subtracted"
    else:
        said = f"{'BGR' if inputs.bgr else 'RGB'}, mean {list(inputs.mean)}, std {list(inputs.std)}"
    return said + ("; Caffe's LRN" if card.lrn else "")


if __name__ == "__main__":
    print(markdown_table())
