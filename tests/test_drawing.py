"""`python -m runner.describe describe.format=png|svg`: every zoo model drawn, one shape per row."""

import re
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from matplotlib.image import imread

from apps import run_app
from helpers import MODEL_NAMES, compose, zoo_report
from runner.architecture.picture import figure, save
from runner.architecture.tables import model_spec

LONGEST_SIDE = 2400  # pixels at 100 dpi
REPEATED = re.compile(r"(.+)_block\d+$")  # builders/names.py: application k of a repeated row


def drawing(model: str, *overrides: str):
    spec = model_spec(compose(f"model={model}", "data=imagenet", *overrides))
    return figure(zoo_report(model, "imagenet", *overrides), spec)


def drawn_rows(picture) -> dict[str, int]:
    """Each row's name, with how many patches its shape has (branches, towers)."""
    counts: dict[str, int] = {}
    for patch in picture.axes[0].patches:
        gid = patch.get_gid() or ""
        if gid.startswith("row:"):
            counts[gid[4:]] = counts.get(gid[4:], 0) + 1
    return counts


def folded_names(model: str, *overrides: str) -> list[str]:
    """The report's row names with consecutive applications of one repeated row taken once."""
    names: list[str] = []
    for layer in zoo_report(model, "imagenet", *overrides).layers:
        match = REPEATED.match(layer.name)
        name = match.group(1) if match else layer.name
        if not (match and names and names[-1] == name):
            names.append(name)
    return names


@pytest.mark.e2e
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_every_zoo_model_draws_one_shape_per_folded_row(model, tmp_path):
    picture = drawing(model)
    assert list(drawn_rows(picture)) == folded_names(model)
    path = tmp_path / f"{model}.png"
    save(picture, path)
    pixels = imread(path)
    height, width = pixels.shape[:2]
    assert max(height, width) <= LONGEST_SIDE and min(height, width) >= 300
    inked = np.mean(pixels[..., :3].min(axis=-1) < 0.9)  # not white
    assert 0.02 < inked < 0.6, f"{model}: {inked:.1%} of the picture inked"


@pytest.mark.parametrize("model, overrides", [("vgg11_lrn", ["model.without=[lrn]"]),
                                              ("googlenet", ["model.aux_loss_weight=0"])])
def test_rows_the_model_leaves_out_are_not_drawn(model, overrides):
    """An ablation's rows (`without`) and removed side outputs make no report row, and no shape."""
    drawn = list(drawn_rows(drawing(model, *overrides)))
    assert drawn == folded_names(model, *overrides) and len(drawn) < len(folded_names(model))


def test_repeats_fold_into_one_shape_marked_with_their_count():
    picture = drawing("resnet152")
    texts = {text.get_text() for text in picture.axes[0].texts}
    assert {"conv2 x3", "conv3 x8", "conv4 x36", "conv5 x3"} <= texts
    assert len(zoo_report("resnet152", "imagenet").layers) == 2 + 3 + 8 + 36 + 3 + 2


def test_inception_branches_side_by_side_and_grouped_towers_stacked():
    googlenet = drawing("googlenet")
    branches = sorted((patch for patch in googlenet.axes[0].patches if patch.get_gid() == "row:inception_3a"),
                      key=lambda patch: patch.get_x())
    widths = [patch.get_width() for patch in branches]
    # inception_3a's branches (GoogLeNet Table 1): 1x1 64, 3x3 128, 5x5 32, pool projection 32.
    assert len(widths) == 4 and widths[1] > widths[0] > widths[2] == pytest.approx(widths[3])
    assert len({patch.get_y() for patch in branches}) == 1, "side by side"
    grouped, plain = drawn_rows(drawing("alexnet_grouped")), drawn_rows(drawing("alexnet"))
    assert [grouped[name] for name in ("conv1", "conv2", "conv3", "conv4", "conv5")] == [1, 2, 1, 2, 2]
    assert plain["conv2"] == 1


def test_svg_is_xml_with_every_row(tmp_path):
    path = tmp_path / "googlenet.svg"
    save(drawing("googlenet"), path)
    ids = {element.get("id") for element in ElementTree.parse(path).iter()}
    assert {name for name in ids if name and name.startswith("row:")} == {f"row:{name}"
                                                                          for name in folded_names("googlenet")}


def test_describe_writes_the_picture_in_the_current_folder(tmp_path):
    result = run_app("runner.describe", "model=lenet", "describe.format=png", f"hydra.run.dir={tmp_path}/run",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert imread(tmp_path / "lenet.png").shape[2] == 4
    assert "wrote lenet.png" in result.stdout
