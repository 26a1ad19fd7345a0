"""The article's lessons as sweeps: degradation (ResNet) and the LRN ablation (AlexNet, VGG), at
quick-look sizes; each leaves its comparison on the parent run."""

import pytest

from sweeps import COMPARISON, artifacts, assert_finished_with_metrics, run_sweep, sweep_runs

QUICK = ("data=synthetic", "trainer.epochs=2", "data.train_size=16", "data.val_size=8", "trainer.batch_size=8",
         "trainer.jit_compile=false")


@pytest.mark.slow
def test_degradation_trains_plain_and_residual_18_and_34_in_one_sweep(tmp_path):
    result = run_sweep(tmp_path, "experiment=degradation", "model.input_shape=[64,64,3]", *QUICK,
                       multirun=False)  # the experiment makes it a multirun
    assert result.returncode == 0, result.stderr[-3000:]
    client, parent, children = sweep_runs(tmp_path)
    assert {child.data.tags["model"] for child in children} == {"plain18", "plain34", "resnet18", "resnet34"}
    assert_finished_with_metrics(client, children, epochs=2)
    for child in children:  # Figure 4's curves: training and validation error of every epoch
        for metric in ("top1", "val_top1"):
            assert [m.step for m in client.get_metric_history(child.info.run_id, metric)] == [0, 1]
    assert parent.data.tags["study"] == "degradation"
    assert COMPARISON <= artifacts(client, parent.info.run_id)


@pytest.mark.slow
def test_lrn_ablation_trains_vgg_a_and_alexnet_with_and_without_lrn(tmp_path):
    result = run_sweep(tmp_path, "experiment=lrn_ablation", "model.input_shape=[96,96,3]", *QUICK, multirun=False)
    assert result.returncode == 0, result.stderr[-3000:]
    client, parent, children = sweep_runs(tmp_path)
    arms = {(child.data.tags["model"], child.data.params["model.without"]) for child in children}
    assert arms == {("vgg11_lrn", "[]"), ("vgg11_lrn", "['lrn']"), ("alexnet", "[]"), ("alexnet", "['lrn']")}
    assert_finished_with_metrics(client, children, epochs=2)
    # Without LRN, VGG A-LRN is VGG A; LRN has no weights, so only the architecture says which is which.
    blocks = {(child.data.tags["model"], child.data.params["model.without"]): child.data.params["model.blocks"]
              for child in children}
    assert "lrn" in blocks[("vgg11_lrn", "[]")] and "lrn" not in blocks[("vgg11_lrn", "['lrn']")]
    assert parent.data.tags["study"] == "lrn_ablation"
    assert COMPARISON <= artifacts(client, parent.info.run_id)
