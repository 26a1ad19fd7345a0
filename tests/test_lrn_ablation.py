"""The LRN ablation (AlexNet, VGG) as one sweep at a quick-look size, with its comparison."""

import pytest

from sweeps import COMPARISON, artifacts, assert_finished_with_metrics, run_sweep, sweep_runs
from test_lessons import QUICK


@pytest.mark.e2e
def test_lrn_ablation_trains_vgg_a_and_alexnet_with_and_without_lrn(tmp_path):
    result = run_sweep(tmp_path, "experiment=lrn_ablation", "model.input_shape=[96,96,3]", *QUICK, multirun=False)
    assert result.returncode == 0, result.stderr[-3000:]
    client, parent, children = sweep_runs(tmp_path)
    arms = {(child.data.tags["model"], child.data.params["model.without"]) for child in children}
    assert arms == {("vgg11_lrn", "[]"), ("vgg11_lrn", "['lrn']"), ("alexnet", "[]"), ("alexnet", "['lrn']")}
    assert_finished_with_metrics(client, children, epochs=1)
    # Without LRN, VGG A-LRN is VGG A; LRN has no weights, so only the architecture says which is which.
    blocks = {(child.data.tags["model"], child.data.params["model.without"]): child.data.params["model.blocks"]
              for child in children}
    assert "lrn" in blocks[("vgg11_lrn", "[]")] and "lrn" not in blocks[("vgg11_lrn", "['lrn']")]
    assert parent.data.tags["study"] == "lrn_ablation"
    assert COMPARISON <= artifacts(client, parent.info.run_id)
