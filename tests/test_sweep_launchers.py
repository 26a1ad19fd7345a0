"""The joblib launcher's parallel jobs and the Optuna sweeper's trials, grouped the same way."""

import pytest

from sweeps import (
    COMPARISON,
    QUICK,
    artifacts,
    assert_best_child_recorded,
    assert_finished_with_metrics,
    run_sweep,
    sweep_runs,
)


@pytest.mark.e2e
def test_joblib_jobs_in_parallel_processes_share_one_sqlite_store(tmp_path):
    result = run_sweep(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                       "trainer.seed=1,2", "trainer.epochs=2", "trainer.steps_per_epoch=2",
                       "trainer.jit_compile=false")
    assert result.returncode == 0, result.stderr[-3000:]
    client, parent, children = sweep_runs(tmp_path)
    assert parent.data.params["sweep.launcher"] == "JoblibLauncher"
    assert len(children) == 2
    assert_finished_with_metrics(client, children, epochs=2)
    assert sorted(child.data.params["trainer.seed"] for child in children) == list("12")
    assert len({child.info.run_name for child in children}) == 2
    assert len({child.data.tags["hydra.output_dir"] for child in children}) == 2, "one folder per job"
    assert_best_child_recorded(parent, children)


@pytest.mark.e2e
def test_optuna_search_trials_are_children_and_the_best_is_on_the_parent(tmp_path):
    result = run_sweep(tmp_path, "hparams_search=optuna", "hydra.sweeper.n_trials=3", *QUICK, multirun=True)
    assert result.returncode == 0, result.stderr[-3000:]
    client, parent, children = sweep_runs(tmp_path)
    assert parent.data.params["sweep.sweeper"] == "OptunaSweeper"
    assert "optimizer.lr=" in parent.data.params["sweep.space"]
    assert len(children) == 3
    assert_finished_with_metrics(client, children)
    assert len({child.data.params["optimizer.lr"] for child in children}) == 3, "each trial samples its own rate"
    assert_best_child_recorded(parent, children)
    assert {"optimization_results.yaml"} | COMPARISON <= artifacts(client, parent.info.run_id)
