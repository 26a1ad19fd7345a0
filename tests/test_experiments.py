"""The ready-made comparisons in conf/experiment/, at quick-look sizes."""

import pytest

from sweeps import COMPARISON, artifacts, assert_finished_with_metrics, run_sweep, sweep_runs


@pytest.mark.e2e
def test_classics_quick_look_trains_the_six_families_in_one_sweep(tmp_path):
    result = run_sweep(tmp_path, "experiment=classics", "data=synthetic", "model.input_shape=[96,96,3]",
                       "trainer.epochs=1", "data.train_size=8", "data.val_size=8", "trainer.batch_size=8",
                       "trainer.jit_compile=false", multirun=False)  # the experiment makes it a multirun
    assert result.returncode == 0, result.stderr[-3000:]
    client, parent, children = sweep_runs(tmp_path)
    assert {child.data.tags["model"] for child in children} == {
        "lenet", "alexnet", "zfnet", "vgg16", "googlenet", "resnet50"}
    assert_finished_with_metrics(client, children)
    assert {child.data.params["model.input_shape"] for child in children} == {"[96, 96, 3]"}
    assert parent.data.tags["study"] == "classics"
    assert COMPARISON <= artifacts(client, parent.info.run_id)
