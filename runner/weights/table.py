"""The README's table of published weights, made from their cards (runner/weights/published.py), so
the documentation cannot drift from what the code loads (a test compares them; torchvision makes its
weights tables from `Weights.meta` the same way). Print it with `python -m runner.weights.table`."""

import pathlib
import urllib.parse

from runner.data.pipeline import IMAGENET, Preprocessing
from runner.weights.families import BVLC_ALEXNET, BVLC_GOOGLENET, CAFFE
from runner.weights.published import IMAGENET_REFERENCE, Published, published_weights

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
    return f"| `{model}` | {names} | {_file(entry)} | {card.licence} | {_inputs(card.preprocessing)} | {metrics} |"


def _file(entry: Published) -> str:
    if entry.hub:
        return f"[`{entry.hub}`](https://huggingface.co/{entry.hub})"
    name = pathlib.PurePosixPath(urllib.parse.urlparse(entry.url).path).name
    return f"[`{name}`]({entry.url}) ({'BVLC, Caffe' if entry.sha1 else 'Keras Applications'})"


def _inputs(preprocessing: Preprocessing) -> str:
    known = {IMAGENET: "RGB, ImageNet mean and std", CAFFE: "BGR, the mean pixel subtracted (Caffe)",
             BVLC_ALEXNET: "BGR, the mean image's mean pixel subtracted (Caffe); Caffe's LRN",
             BVLC_GOOGLENET: "BGR, the mean pixel 104, 117, 123 subtracted (Caffe); Caffe's LRN"}
    return known.get(preprocessing, f"{'BGR' if preprocessing.bgr else 'RGB'}, mean {list(preprocessing.mean)}, "
                                    f"std {list(preprocessing.std)}")


if __name__ == "__main__":
    print(markdown_table())
