"""Probes of resume points: two live launches of one command, and a run killed -9 whose
resume point is then damaged. Each rerun ends in one line or resumes, and no run stays RUNNING once
nothing can continue it."""

import errno
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from helpers import compose
from runner.mistakes.errors import UserError
from runner.session.strategy import Worker
from runner.training import resume, resume_state
from runner.weights import saved
from test_resume import QUICK, environment, epochs_logged, run_here, runs

# A child process that trains like `python -m runner`, and stays alive once its second epoch is saved
# and recorded: a live holder of the resume point at a known moment, not one racing the test.
LIVE_AFTER_TWO_EPOCHS = """
import pathlib, time
from runner.training import loop
record_epoch = loop._record_epoch
def record_then_stay(hooks, model, epoch, *rest):
    record_epoch(hooks, model, epoch, *rest)
    if epoch == 1:
        pathlib.Path("two-epochs-done").touch()
        time.sleep(600)
loop._record_epoch = record_then_stay
from runner.__main__ import main
main()
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A folder where a run of QUICK trains in a child process, alive after its second epoch of four."""
    folder = tmp_path_factory.mktemp("live")
    child = subprocess.Popen([sys.executable, "-c", LIVE_AFTER_TWO_EPOCHS, f"hydra.run.dir={folder}/live", *QUICK],
                             cwd=folder, env=environment(folder), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    deadline = time.monotonic() + 300
    while not (folder / "two-epochs-done").exists():
        assert child.poll() is None, child.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "two epochs did not end in time"
        time.sleep(0.05)
    yield folder, child
    child.kill()
    child.wait()


@pytest.fixture(scope="module")
def killed(live) -> pathlib.Path:
    """That run killed -9 (after the tests of it alive, which come first in this file): its resume point
    whole, its MLflow run RUNNING. SIGKILL releases the lock, nothing is left to clean up."""
    folder, child = live
    child.kill()
    assert child.wait() == -signal.SIGKILL
    return folder


def one_line_error(result) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return line


def by_id(tmp_path) -> dict:
    _, all_runs = runs(tmp_path)
    return {run_.info.run_id: run_ for run_ in all_runs}


def folder_contents(directory: pathlib.Path) -> dict[str, bytes]:
    return {str(path.relative_to(directory)): path.read_bytes() for path in directory.rglob("*") if path.is_file()}


@pytest.mark.e2e
def test_a_second_launch_refuses_while_the_first_lives_and_a_separate_run_leaves_it_alone(live):
    folder, child = live
    assert child.poll() is None, "this test runs before those that kill the child"
    directory = folder / resume.RESUME_DIR / resume.config_key(compose(*QUICK))
    before = folder_contents(directory)
    [live_run] = by_id(folder)

    line = one_line_error(run_here(folder, "second"))
    assert f"PID {child.pid}" in line and "trainer.resume=false" in line and str(resume.RESUME_DIR) in line
    assert list(by_id(folder)) == [live_run], "it refused before starting an MLflow run"

    separate = run_here(folder, "separate", "trainer.resume=false")
    assert separate.returncode == 0, separate.stderr[-3000:]
    assert f"keeps its resume point in {directory.relative_to(folder)}-2" in separate.stdout
    assert folder_contents(directory) == before, "the separate run touched the live run's resume point"
    recorded = by_id(folder)
    assert recorded[live_run].info.status == "RUNNING" and "failure_reason" not in recorded[live_run].data.tags
    [other] = set(recorded) - {live_run}
    assert recorded[other].info.status == "FINISHED"
    assert recorded[other].data.tags["resume_key"] == directory.name + "-2"
    assert (folder / "separate" / "model.keras").exists() and not (folder / "live" / "model.keras").exists()


def test_each_worker_holds_its_own_resume_folder_and_a_second_holder_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = compose()
    key = resume.config_key(cfg)
    with resume.claimed(cfg, Worker(0, 2)) as chief, resume.claimed(cfg, Worker(1, 2)) as worker:
        assert (chief.name, worker.name) == (key, f"{key}-worker1")
        # flock belongs to an open file description: this second open conflicts as another process's would.
        with pytest.raises(UserError, match=f"held by a live process \\(PID {os.getpid()}\\)"), \
                resume.claimed(cfg, Worker(1, 2)):
            pass
        shutil.rmtree(chief)  # as a run that finishes deletes its resume point, lock file included
        with resume.claimed(cfg, Worker(0, 2)) as again:
            assert again == chief, "the next run claims the folder anew"
    with resume.claimed(cfg, Worker(1, 2)) as released:
        assert released == worker


@pytest.mark.parametrize("damage, why", [
    (lambda text: text[: len(text) // 2], "state.json is not JSON"),
    (lambda text: os.urandom(len(text)), "state.json is not text"),
    (lambda text: json.dumps({"model": "lenet", "epochs": 3}), "unknown keys epochs, model; missing keys run_id"),
    (lambda text: "[1, 2]", "state.json holds a JSON list"),
    (lambda text: json.dumps({**json.loads(text), "epoch": "3"}), "wrong types of epoch"),
])
def test_a_state_json_that_cannot_be_read_is_one_error_naming_both_ways_out(tmp_path, damage, why):
    state = {"run_id": "abc", "epoch": 3, "history": {"loss": [1.0, 0.9, 0.8]}, "checkpoint": "c/ckpt-3"}
    damaged = damage(json.dumps(state))
    (tmp_path / resume_state.STATE_FILE).write_bytes(damaged if isinstance(damaged, bytes) else damaged.encode())
    with pytest.raises(UserError) as raised:
        resume.read(tmp_path)
    message = str(raised.value)
    assert why in message and "\n" not in message
    assert f"delete {tmp_path / 'state.json'}" in message and "trainer.resume=false" in message


def located(tmp_path, state=None):
    """Where this config's run starts from a resume folder holding `state` and no checkpoints."""
    cfg = compose()
    directory = resume.RESUME_DIR / resume.config_key(cfg)
    (directory / "checkpoints").mkdir(parents=True)
    (directory / "checkpoints" / "ckpt-3.index").write_text("")
    if state:
        (directory / resume_state.STATE_FILE).write_text(json.dumps(state))
    with resume.claimed(cfg, Worker()) as folder:
        return resume.locate(cfg, tf.distribute.get_strategy(), Worker(), tmp_path / "run", folder)


def test_a_deleted_state_json_starts_afresh_without_the_old_checkpoints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start = located(tmp_path)
    assert (start.resumed, start.epoch, start.run_id) == (False, 0, None)
    assert [path.name for path in start.directory.iterdir()] == ["lock"]


def test_without_a_readable_checkpoint_to_fall_back_to_it_starts_afresh_or_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    after_one = {"run_id": "abc", "epoch": 1, "history": {"loss": [1.0]},
                 "checkpoint": "outputs/resume/x/checkpoints/ckpt-1"}
    assert located(tmp_path, after_one) == resume.Start(run_dir=tmp_path / "run", directory=resume.RESUME_DIR /
                                                         resume.config_key(compose()))
    shutil.rmtree(resume.RESUME_DIR)
    with pytest.raises(UserError, match="its last two checkpoints, .*ckpt-3 and .*ckpt-2.*trainer.resume=false"):
        located(tmp_path, {**after_one, "epoch": 3, "checkpoint": "outputs/resume/x/checkpoints/ckpt-3"})


def copy_of(killed: pathlib.Path, tmp_path: pathlib.Path) -> tuple[pathlib.Path, dict, str]:
    """The killed run's folder copied to tmp_path: its resume folder, its state and its run id."""
    shutil.copytree(killed, tmp_path, dirs_exist_ok=True)
    [directory] = (tmp_path / resume.RESUME_DIR).iterdir()
    state_file = directory / resume_state.STATE_FILE
    state = json.loads(state_file.read_text())
    state["run_dir"] = state["run_dir"].replace(str(killed), str(tmp_path))  # its weights go to the copy
    state_file.write_text(json.dumps(state))
    client, _ = runs(tmp_path)
    client.set_tag(state["run_id"], "resume_folder", f"{socket.gethostname()}:{directory.resolve()}")  # moved here
    return directory, state, state["run_id"]


def assert_superseded(tmp_path, killed_run: str, earlier: set[str]) -> str:
    """The one run started since `earlier` finished, and ended the killed run as superseded by it."""
    recorded = by_id(tmp_path)
    [new] = set(recorded) - earlier
    assert recorded[new].info.status == "FINISHED"
    assert recorded[killed_run].info.status == "KILLED"
    assert recorded[killed_run].data.tags["failure_reason"].startswith(f"superseded by run {new}")
    return new


@pytest.mark.e2e
def test_a_cut_short_state_json_is_refused_and_resume_false_ends_the_killed_run(killed, tmp_path):
    directory, _, killed_run = copy_of(killed, tmp_path)
    state_file = directory / resume_state.STATE_FILE
    state_file.write_text(state_file.read_text()[: state_file.stat().st_size // 2])
    client, _ = runs(tmp_path)
    experiment = client.get_run(killed_run).info.experiment_id
    folder_tag = client.get_run(killed_run).data.tags["resume_folder"]
    # RUNNING runs that are not this resume point's: another config's, and this config's elsewhere.
    others = [client.create_run(experiment, tags={"resume_key": "another", "resume_folder": folder_tag}).info.run_id,
              client.create_run(experiment, tags={"resume_key": directory.name,
                                                  "resume_folder": "another-host:/work"}).info.run_id]

    earlier = set(by_id(tmp_path))

    line = one_line_error(run_here(tmp_path, "refused"))  # after taking the lock the killed run held
    assert f"the resume point in {directory.relative_to(tmp_path)} cannot be read (state.json is not JSON" in line
    assert f"delete {state_file.relative_to(tmp_path)}" in line and "trainer.resume=false" in line
    assert set(by_id(tmp_path)) == earlier and by_id(tmp_path)[killed_run].info.status == "RUNNING"

    fresh = run_here(tmp_path, "fresh", "trainer.resume=false")
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    recorded = by_id(tmp_path)
    assert all(recorded[other].info.status == "RUNNING" for other in others)
    new = assert_superseded(tmp_path, killed_run, earlier)
    assert f"ended abandoned MLflow run {killed_run} as KILLED" in fresh.stdout
    assert epochs_logged(client, new) == [0, 1, 2, 3]
    assert not directory.exists(), "the finished run deleted its resume point"


@pytest.mark.e2e
def test_a_lost_latest_checkpoint_falls_back_and_a_failed_end_is_redone_with_each_metric_once(killed, tmp_path):
    _, state, killed_run = copy_of(killed, tmp_path)
    assert state["epoch"] == 2
    latest = list(tmp_path.glob(state["checkpoint"] + ".*"))
    assert latest, state["checkpoint"]
    for path in latest:
        path.unlink()

    def input_output_error(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(saved, "save", input_output_error)  # after eval_top1 is logged, before the run ends
        failed = run_here(tmp_path, "resumed")
    said = failed.stdout + failed.stderr
    assert "resuming from the one before it, after epoch 1" in said
    assert f"resuming MLflow run {killed_run} after epoch 1" in said
    client, _ = runs(tmp_path)
    run_ = by_id(tmp_path)[killed_run]
    assert run_.info.status == "FAILED" and "Input/output error" in run_.data.tags["failure_reason"]

    redone = run_here(tmp_path, "redone")
    assert redone.returncode == 0, redone.stderr[-3000:]
    assert f"resuming MLflow run {killed_run} after epoch 4" in redone.stdout
    run_ = by_id(tmp_path)[killed_run]
    assert run_.info.status == "FINISHED" and "failure_reason" not in run_.data.tags
    assert epochs_logged(client, killed_run) == [0, 1, 2, 3], "the epoch redone from the checkpoint before"
    assert [metric.step for metric in client.get_metric_history(killed_run, "eval_top1")] == [4]
