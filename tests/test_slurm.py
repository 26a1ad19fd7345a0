"""SLURM for real: a single-node cluster started by the tests (slurm_cluster.py) runs
`srun -n 2 python -m runner trainer.strategy=multi_worker` and a sweep through Hydra's submitit launcher.
And a job step's cluster as the resolver reads it from SLURM's variables, on CPU and on GPU nodes.

Every test that needs the cluster is in this file: pytest-xdist hands out whole files (--dist loadfile),
so one worker starts it, once, for all of them."""

import os
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from helpers import new_store
from runner.mistakes.errors import UserError
from runner.session import strategy
from runner.slurm_queue import QueueWatcher
from slurm_cluster import Unavailable, single_node_slurm
from sweeps import assert_finished_with_metrics, sweep_runs
from test_cluster import QUICK
from test_resume import runs

ONE_EPOCH = [*QUICK, "trainer.epochs=1"]
# SLURM's variables in the two tasks of `srun -n 2` on one node (here, task 1).
TWO_TASKS = {"SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_LOCALID": "1", "SLURM_STEP_NODELIST": "localhost",
             "SLURM_STEP_TASKS_PER_NODE": "2", "SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_NUM_NODES": "1"}


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    try:
        with single_node_slurm(tmp_path_factory.mktemp("slurm")) as cluster:
            yield cluster
    except Unavailable as reason:
        pytest.skip(f"no single-node SLURM: {reason}")


def environment(slurm, **extra) -> dict[str, str]:
    """The cluster's environment without what would send a run elsewhere (a store, a TF_CONFIG cluster)."""
    unset = ("MLFLOW_TRACKING_URI", "TF_CONFIG")
    return {**{key: value for key, value in slurm.environment.items() if key not in unset}, **extra}


@pytest.mark.e2e
def test_srun_with_two_tasks_trains_one_model_on_two_workers(slurm, tmp_path):
    result = subprocess.run(
        ["srun", "--ntasks=2", "--kill-on-bad-exit=1", sys.executable, "-m", "runner", "trainer.strategy=multi_worker",
         *ONE_EPOCH, f"tracking.uri={new_store(tmp_path)}", f"hydra.run.dir={tmp_path}/run"],
        # srun interleaves the two tasks' output, at times inside a character of a progress bar.
        cwd=tmp_path, env=environment(slurm), capture_output=True, text=True, errors="replace", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    _, [run] = runs(tmp_path)  # the chief alone records
    assert run.info.status == "FINISHED"
    assert (run.data.params["workers"], run.data.params["replicas"]) == ("2", "2")
    assert "worker 1: training with the chief" in result.stdout
    assert (tmp_path / "run" / "worker1" / "model.keras").exists()


@pytest.mark.e2e
def test_a_sweep_runs_as_slurm_jobs_under_one_parent_and_polls_quietly(slurm, tmp_path):
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [sys.executable, "-m", "runner", "-m", "hydra/launcher=submitit_slurm",
         f"hydra.launcher.partition={slurm.partition}", f"hydra.sweep.dir={sweep}", *ONE_EPOCH,
         "optimizer.lr=0.01,0.02"],
        cwd=tmp_path, env=environment(slurm, MLFLOW_TRACKING_URI=new_store(tmp_path)), capture_output=True,
        text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    client, parent, children = sweep_runs(tmp_path)
    assert parent.info.status == "FINISHED" and len(children) == 2
    assert_finished_with_metrics(client, children)
    # One SLURM job array, a task per sweep job: submitit's folder per task, <array id>_<index>, holds the
    # log the task wrote, which starts with the SLURM job it ran as.
    jobs = sorted(folder.name for folder in sweep.glob(".submitit/[0-9]*_*"))
    array = jobs[0].split("_")[0]
    assert jobs == [f"{array}_0", f"{array}_1"], jobs
    for job in jobs:
        assert f"JobEnvironment(job_id={job}," in (sweep / ".submitit" / job / f"{job}_0_log.out").read_text()
    assert "sacct" not in output and "accounting storage is disabled" not in output, output[-5000:]


@pytest.mark.e2e
def test_a_sweep_whose_job_slurm_cancelled_ends_failed_instead_of_waiting(slurm, tmp_path):
    """Without accounting, submitit alone would wait for the cancelled job's result forever."""
    env = environment(slurm, MLFLOW_TRACKING_URI=new_store(tmp_path))
    sweep = subprocess.Popen(
        [sys.executable, "-m", "runner", "-m", "hydra/launcher=submitit_slurm", f"hydra.sweep.dir={tmp_path}/sweep",
         "trainer.epochs=1000", "trainer.jit_compile=false"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        job = running_job(env, sweep)
        subprocess.run(["scancel", job], env=env, check=True, timeout=30)
        # SLURM kills the job within KillWait (30 s) and the watcher polls at most a minute apart.
        output, _ = sweep.communicate(timeout=180)
    finally:
        sweep.kill()
    assert sweep.returncode != 0
    assert "has not produced any output (state: CANCELLED)" in output, output[-5000:]
    assert "Traceback" not in output and "error: a sweep job ended without a result: Job " in output, output[-5000:]
    _, [parent] = runs(tmp_path)
    assert parent.data.tags["runner.role"] == "sweep" and parent.info.status == "FAILED"


def running_job(env, sweep) -> str:
    """The id of the sweep's SLURM job once it runs."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert sweep.poll() is None, sweep.stdout.read()
        listed = subprocess.run(["squeue", "--noheader", "--states=RUNNING", "--format=%i"], env=env,
                                capture_output=True, text=True, timeout=30).stdout.split()
        if listed:
            return listed[0]
        time.sleep(0.5)
    raise AssertionError("the sweep's job did not start in 120 s")


def test_the_queue_watcher_reads_squeue_and_takes_a_job_it_no_longer_lists_for_ended():
    watcher = QueueWatcher(delay_s=600)
    for job in ("7_0", "7_1", "8"):
        watcher.register_job(job)
    assert watcher._make_command()[0] == "squeue"
    info = watcher.read_info(b"7_0|RUNNING|vm\n7_1|CANCELLED|vm\n")
    assert {job: info[job]["State"] for job in info} == {"7_0": "RUNNING", "7_1": "CANCELLED", "8": "ENDED"}


@pytest.fixture
def slurm_step(monkeypatch):
    """A task of `srun -n 2` (TWO_TASKS) on a node where nvidia-smi cannot run; `gpus(n)` makes
    TensorFlow list n GPUs, as SLURM's CUDA_VISIBLE_DEVICES left them, and records what the task keeps."""
    for key, value in TWO_TASKS.items():
        monkeypatch.setenv(key, value)
    for key in ("TF_CONFIG", "CUDA_VISIBLE_DEVICES", "SLURM_GPUS_ON_NODE", "SLURM_JOB_ID", "SLURM_STEP_ID"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    kept = []

    def gpus(count: int):
        listed = [tf.config.PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(count)]
        monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: listed if kind == "GPU" else [])
        monkeypatch.setattr(tf.config, "set_visible_devices", lambda devices, kind=None: kept.extend(devices))
        return kept

    return gpus


def names(devices) -> list[str]:
    return [device.name.rsplit(":", 1)[1] for device in devices]


def test_a_cpu_node_step_has_two_workers_on_their_cpus(slurm_step):
    slurm_step(0)
    resolver = strategy._cluster_resolver()
    assert resolver.cluster_spec().as_dict() == {"worker": ["localhost:8888", "localhost:8889"]}
    assert (resolver.task_type, resolver.task_id) == ("worker", 1)
    assert resolver.num_accelerators() == {}  # MultiWorkerMirroredStrategy then trains on the CPU, not on a GPU:0
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_a_task_that_slurm_bound_to_its_gpu_keeps_it(slurm_step, monkeypatch):
    monkeypatch.setenv("SLURM_GPUS_ON_NODE", "2")  # srun --gpus-per-task=1: each task sees its one GPU
    kept = slurm_step(1)
    resolver = strategy._cluster_resolver()
    assert resolver.num_accelerators() == {"GPU": 1} and names(kept) == ["0"]
    assert resolver.cluster_spec().as_dict() == {"worker": ["localhost:8888", "localhost:8889"]}
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


@pytest.mark.parametrize("gpus_on_node", ["4", None])  # allocated by SLURM, or GPUs SLURM does not manage
def test_tasks_that_see_all_the_nodes_gpus_take_their_share(slurm_step, monkeypatch, gpus_on_node):
    if gpus_on_node:
        monkeypatch.setenv("SLURM_GPUS_ON_NODE", gpus_on_node)
    kept = slurm_step(4)
    resolver = strategy._cluster_resolver()
    assert resolver.num_accelerators() == {"GPU": 2} and names(kept) == ["2", "3"]  # task 1's half
    assert resolver.cluster_spec().as_dict() == {"worker": ["localhost:8888", "localhost:8889"]}


def test_more_tasks_than_shared_gpus_is_one_line(slurm_step):
    slurm_step(1)
    with pytest.raises(UserError, match=r"^2 tasks per node share 1 GPUs; ask SLURM for a GPU per task"):
        strategy._cluster_resolver()


def test_two_steps_on_one_node_listen_on_different_ports(slurm_step, monkeypatch):
    slurm_step(0)
    ports = set()
    for job, step in [("41", "0"), ("41", "1"), ("42", "0")]:
        monkeypatch.setenv("SLURM_JOB_ID", job)
        monkeypatch.setenv("SLURM_STEP_ID", step)
        addresses = strategy._cluster_resolver().cluster_spec().as_dict()["worker"]
        ports |= {int(address.rsplit(":", 1)[1]) for address in addresses}
    assert len(ports) == 6 and all(1024 < port < 32768 for port in ports)
