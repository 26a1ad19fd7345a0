"""`python -m runner.describe`: the report as table, Markdown and JSON, from the real Hydra app."""

import json
import subprocess
import sys

import pytest

from apps import run_app
from helpers import REPO, compose, zoo_report
from runner.architecture.tables import describe, render

JSON_KEYS = {"model", "input_shape", "total_params", "trainable_params", "macs", "layers", "num_classes", "data"}
ROW_KEYS = {"name", "type", "output_shape", "params", "macs"}


def run_describe(*args, cwd=REPO):
    return run_app("runner.describe", *args, cwd=cwd)


@pytest.mark.e2e
def test_table_shows_the_size_rule_and_totals():
    text = render(zoo_report("alexnet", "imagenet"), "table")
    assert "floor((227 + 2*0 - 11) / 4) + 1 = 55" in text
    assert "27x27x96" in text and "total params 62,378,344" in text


@pytest.mark.e2e
def test_table_shows_the_pad_and_the_ceil_form():
    """Explicit pads (ResNet's, torchvision's) and ceil-mode pools (GoogLeNet's, Caffe's) in the size rule."""
    resnet = render(zoo_report("resnet50", "imagenet"), "table")
    assert "7x7 / 2 / pad 3" in resnet and "floor((224 + 2*3 - 7) / 2) + 1 = 112" in resnet
    assert "3x3 / 2 / pad 1" in resnet and "floor((112 + 2*1 - 3) / 2) + 1 = 56" in resnet
    googlenet = render(zoo_report("googlenet", "imagenet"), "table")
    assert "ceil((112 + 2*0 - 3) / 2) + 1 = 56" in googlenet and "ceil((56 + 2*0 - 3) / 2) + 1 = 28" in googlenet


def test_table_shows_what_each_row_sees():
    text = render(zoo_report("alexnet", "imagenet"), "table")
    header = text.splitlines()[1].split()
    assert header[header.index("size") + 1:][:2] == ["RF", "jump"]
    conv5 = next(line for line in text.splitlines() if " conv5 " in line)
    assert conv5.split()[-4:-2] == ["163", "16"]  # RF, jump, params, MACs
    fc8 = next(line for line in text.splitlines() if " fc8 " in line)
    assert "global" in fc8.split()
    assert "last feature map pool5 (6x6x256): each unit sees 195x195 input pixels, its neighbours 32 apart" in text


@pytest.mark.e2e
def test_markdown_is_a_table_with_one_line_per_row():
    report = zoo_report("vgg16", "imagenet")
    lines = [line for line in render(report, "markdown").splitlines() if line.startswith("|")]
    assert len(lines) == 2 + len(report.layers)  # header, rule, rows


def test_json_has_the_contract_keys():
    data = json.loads(render(zoo_report("resnet50", "imagenet"), "json"))
    assert JSON_KEYS <= set(data)
    assert all(ROW_KEYS <= set(layer) for layer in data["layers"])
    assert data["layers"][0]["output_shape"] == [None, 112, 112, 64]
    assert len(data["layers"]) == 2 + 3 + 4 + 6 + 3 + 2  # conv1, pool1, 16 bottlenecks, pool, fc
    # Receptive field and jump: ints while there is a feature map, null (global) after it.
    fields = [(layer["receptive_field"], layer["jump"]) for layer in data["layers"]]
    assert fields[:2] == [(7, 2), (11, 4)] and fields[-3] == (427, 32)
    assert fields[-2:] == [(None, None), (None, None)]


@pytest.mark.e2e
def test_the_header_names_the_classes_data_sized_the_head_for():
    """describe's default data=digits gives a 10-way head: the header says so, and how to get the zoo's counts."""
    small = zoo_report("resnet18", "digits", "model.input_shape=[64,64,3]")
    for fmt in ("table", "markdown"):
        assert ("head sized for 10 classes (data=digits; data=imagenet or data.num_classes=1000"
                in render(small, fmt).splitlines()[0])
    assert json.loads(render(small, "json"))["num_classes"] == 10
    title = render(zoo_report("resnet18", "imagenet", "model.input_shape=[64,64,3]"), "table").splitlines()[0]
    assert title.endswith("head sized for 1000 classes (data=imagenet)")


def test_input_shape_override_shrinks_the_maps():
    report = describe(compose("model=resnet18", "model.input_shape=[64,64,3]"))
    assert report.layers[-2].input_shape == [2, 2, 512]


@pytest.mark.e2e
def test_multirun_describes_several_models_in_one_process(tmp_path):
    # One model of each family at 96 pixels (the smallest AlexNet and GoogLeNet's heads take): every
    # model at its paper's size is checked in test_zoo; here it is the sweep in one process.
    families = ["lenet", "alexnet", "vgg11", "googlenet", "resnet18"]
    result = run_describe("-m", f"model={','.join(families)}", "model.input_shape=[96,96,3]",
                          "describe.format=json",
                          f"describe.output={tmp_path}/${{model.name}}.json", f"hydra.sweep.dir={tmp_path}/sweep")
    assert result.returncode == 0, result.stderr
    for name in families:
        data = json.loads((tmp_path / f"{name}.json").read_text())
        assert data["model"] == name and JSON_KEYS <= set(data)
        assert data["layers"][-1]["output_shape"] == [None, 10]


def test_a_new_architecture_needs_only_a_yaml_file(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "mixed.yaml").write_text(
        "name: mixed\n"
        "input_shape: [64, 64, 3]\n"
        "blocks:\n"
        "  - {type: conv, filters: 32, kernel_size: 3, strides: 2, padding: same, batch_norm: true, name: stem}\n"
        "  - {type: inception, b1x1: 16, b3x3_reduce: 16, b3x3: 32, b5x5_reduce: 8, b5x5: 8, pool_proj: 8, name: mix}\n"
        "  - {type: bottleneck, filters: 16, strides: 2, repeat: 2, name: deep}\n"
        "  - {type: basic, filters: 96, strides: 2, name: wide}\n"
        "  - {type: global_avgpool}\n"
        "  - {type: dense, units: \"${data.num_classes}\"}\n")
    out = tmp_path / "mixed.json"
    result = run_describe("--config-dir", str(tmp_path), "model=mixed", "describe.format=json",
                          f"describe.output={out}", f"hydra.run.dir={tmp_path}/run")
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert [layer["name"] for layer in data["layers"]] == [
        "stem", "mix", "deep_block1", "deep_block2", "wide", "global_avgpool1", "dense1"]
    assert [layer["output_shape"] for layer in data["layers"]][:5] == [
        [None, 32, 32, 32], [None, 32, 32, 64], [None, 16, 16, 64], [None, 16, 16, 64], [None, 8, 8, 96]]


def test_a_spec_error_is_one_line_and_exit_2(tmp_path):
    result = run_describe("model=lenet", "model.input_shape=[4,4,1]", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: model.blocks[0] (c1: conv): the feature map collapses: floor((4 + 2*0 - 5) / 1) + 1 = 0 "
        "from a 4x4x1 input; use a larger model.input_shape or remove the row")


def test_an_unknown_model_lists_the_available_ones(tmp_path):
    result = run_describe("model=lenett", f"hydra.run.dir={tmp_path}")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "Could not find 'model/lenett'" in result.stderr and "resnet50" in result.stderr


@pytest.mark.e2e
def test_commands_started_in_the_same_second_get_their_own_folders(tmp_path):
    """Hydra names run folders by time; two jobs started together must not share one (and its weights).
    Each writes its report into its folder: an empty one would not be left (tests/test_app_shell.py)."""
    report = "describe.output=${hydra:runtime.output_dir}/lenet.txt"
    started = [subprocess.Popen([sys.executable, "-m", "runner.describe", "model=lenet", report], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    assert [process.wait(timeout=300) for process in started] == [0, 0]
    assert len(list((tmp_path / "outputs" / "runs").glob("*/*"))) == 2


@pytest.mark.e2e
def test_without_leaves_out_every_row_of_a_type_for_ablations():
    full, ablated = zoo_report("alexnet"), zoo_report("alexnet", "imagenet", "model.without=[lrn]")
    assert [row.name for row in full.layers if row.type != "lrn"] == [row.name for row in ablated.layers]
    assert ablated.total_params == full.total_params  # LRN has no weights
    # VGG A-LRN without its LRN row is VGG A.
    assert zoo_report("vgg11_lrn", "imagenet", "model.without=[lrn]").macs == zoo_report("vgg11").macs
