"""The article's lessons as sweeps, at quick-look sizes: degradation (ResNet); each leaves its
comparison on the parent run. The LRN ablation is in test_lrn_ablation.py (another xdist worker)."""

import pytest

from sweeps import COMPARISON, artifacts, assert_finished_with_metrics, run_sweep, sweep_runs

QUICK = ("data=synthetic", "trainer.epochs=1", "data.train_size=16", "data.val_size=8", "trainer.batch_size=8",
         "trainer.jit_compile=false")


@pytest.mark.e2e
def test_degradation_trains_plain_and_residual_18_and_34_in_one_sweep(tmp_path):
    result = run_sweep(tmp_path, "experiment=degradation", "model.input_shape=[64,64,3]", *QUICK,
                       multirun=False)  # the experiment makes it a multirun
    assert result.returncode == 0, result.stderr[-3000:]
    client, parent, children = sweep_runs(tmp_path)
    assert {child.data.tags["model"] for child in children} == {"plain18", "plain34", "resnet18", "resnet34"}
    assert_finished_with_metrics(client, children, epochs=1)
    for child in children:  # Figure 4's curves: training and validation error of every epoch
        for metric in ("top1", "val_top1"):
            assert [m.step for m in client.get_metric_history(child.info.run_id, metric)] == [0]
    assert parent.data.tags["study"] == "degradation"
    assert COMPARISON <= artifacts(client, parent.info.run_id)

