"""Multi-worker training on loopback: `python -m runner.cluster workers=2 -- ...` starts two real
MultiWorkerMirroredStrategy workers; one MLflow run, identical weights, faults that stop and resume."""

import json
import os
import subprocess
import sys
import time

import hydra
import numpy as np
import psutil
import pytest

from helpers import CONF, compose, new_store
from runner.mistakes.errors import UserError
from runner.session.strategy import make_strategy
from runner.training import resume
from test_resume import epochs_logged, final_weights, runs

# LeNet on digits, short epochs; XLA off: compiling costs more than these steps.
QUICK = ["trainer.steps_per_epoch=5", "trainer.jit_compile=false"]


def cluster_command(tmp_path, *overrides):
    return [sys.executable, "-m", "runner.cluster", "workers=2", "--", *QUICK,
            f"tracking.uri={new_store(tmp_path)}", f"hydra.run.dir={tmp_path}/run", *overrides]


def environment():
    return {key: value for key, value in os.environ.items() if key not in ("MLFLOW_TRACKING_URI", "TF_CONFIG")}


def run_cluster(tmp_path, *overrides):
    """Runs in tmp_path: the resume points go to tmp_path/outputs/resume."""
    return subprocess.run(cluster_command(tmp_path, *overrides), cwd=tmp_path, env=environment(),
                          capture_output=True, text=True, timeout=600)


@pytest.mark.e2e
def test_a_killed_worker_stops_the_other_and_the_same_commands_resume_the_run(tmp_path):
    launcher = subprocess.Popen(cluster_command(tmp_path, "trainer.epochs=4"), cwd=tmp_path, env=environment(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    workers = wait_for_epoch(tmp_path, launcher, epoch=1)
    workers[1].kill()
    killed_at = time.monotonic()
    workers[0].wait(timeout=60)
    assert time.monotonic() - killed_at < 30, "the surviving worker did not stop within 30 s"
    output, _ = launcher.communicate(timeout=60)
    assert launcher.returncode != 0
    assert "/job:worker/replica:0/task:1 of the cluster stopped; relaunch every worker" in output
    _, [stopped] = runs(tmp_path)
    assert stopped.info.status == "FAILED"

    resumed = run_cluster(tmp_path, "trainer.epochs=4")
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert "resuming MLflow run" in resumed.stdout, resumed.stdout[-3000:]
    client, [run] = runs(tmp_path)  # the other worker recorded nothing
    assert run.info.run_id == stopped.info.run_id and run.info.status == "FINISHED"
    assert epochs_logged(client, run.info.run_id) == [0, 1, 2, 3]
    assert (run.data.params["workers"], run.data.params["replicas"]) == ("2", "2")
    # Both workers applied the same all-reduced updates, before and after the fault: one model, bit for bit.
    for chief, other in zip(final_weights(tmp_path / "run" / "model.keras"),
                            final_weights(tmp_path / "run" / "worker1" / "model.keras")):
        np.testing.assert_array_equal(chief, other)
    assert "[worker 0]" in resumed.stdout and "[worker 1]" in resumed.stdout


def wait_for_epoch(tmp_path, launcher, epoch) -> dict[int, psutil.Process]:
    """The two worker processes, once both resume points hold `epoch` epochs."""
    deadline = time.monotonic() + 300
    while min(resume_epochs(tmp_path), default=0) < epoch or len(resume_epochs(tmp_path)) < 2:
        assert launcher.poll() is None, launcher.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "no epoch was saved in time"
        time.sleep(0.1)
    workers = {}
    for child in psutil.Process(launcher.pid).children():
        tf_config = json.loads(child.environ()["TF_CONFIG"])
        workers[tf_config["task"]["index"]] = child
    return workers


def resume_epochs(tmp_path) -> list[int]:
    """The epoch of every worker's resume point (the chief's folder and `<key>-worker1`)."""
    return [json.loads(path.read_text())["epoch"] for path in (tmp_path / "outputs" / "resume").glob("*/state.json")]


def test_workers_resume_together_from_the_epoch_all_of_them_saved():
    point = resume.Start(3, {"loss": [3.0, 2.0, 1.0]}, "run", checkpoint="/r/checkpoints/ckpt-3", stopped=True)
    fresh = resume.Start()
    assert resume.rewound(point, 3, fresh) is point
    back = resume.rewound(point, 2, fresh)
    assert (back.epoch, back.history, back.checkpoint, back.stopped, back.run_id) == (
        2, {"loss": [3.0, 2.0]}, "/r/checkpoints/ckpt-2", False, "run")
    assert resume.rewound(point, 0, fresh) is fresh, "no epoch saved by all: a new run"
    with pytest.raises(UserError, match="2 epochs apart"):
        resume.rewound(point, 1, fresh)


@pytest.mark.parametrize("argv, message", [
    (["workers=0"], "workers=0: expected a positive int"),
    (["nodes=2", "--"], "nodes=2: unknown option; runner overrides go after --"),
])
def test_cluster_mistakes_are_one_line(argv, message):
    result = subprocess.run([sys.executable, "-m", "runner.cluster", *argv], capture_output=True, text=True,
                            timeout=60, env=environment())
    assert result.returncode == 2 and result.stderr.startswith(f"error: {message}\n")


@pytest.mark.parametrize("tf_config, message", [
    ("not json", r"^TF_CONFIG is not a JSON object with 'cluster' and 'task': set TF_CONFIG"),
    ('{"cluster": {"worker": ["localhost:1"]}}', r"^TF_CONFIG is not a JSON object with 'cluster' and 'task'"),
    (None, r"^trainer.strategy=multi_worker: no cluster found; set TF_CONFIG"),
])
def test_a_missing_or_malformed_cluster_is_one_line_before_tensorflow_starts(monkeypatch, tf_config, message):
    # Refused before MultiWorkerMirroredStrategy is created, so this process's runtime is untouched.
    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(UserError, match=message):
        make_strategy(compose("trainer.strategy=multi_worker").trainer)


def test_the_slurm_launcher_composes_for_sweeps():
    """The plugin is installed and its config is what docs/scale-out.md shows (tests/test_slurm.py runs it on a
    real SLURM)."""
    with hydra.initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = hydra.compose("config", ["hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu",
                                       "hydra.launcher.gpus_per_node=1"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.partition, launcher.gpus_per_node) == ("gpu", 1)
