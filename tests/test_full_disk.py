"""A full disk: one line naming the file and the free space, the run FAILED (or, when the MLflow store
itself cannot be written, RUNNING and said so), no truncated file under a final name, no segfault."""

import contextlib
import errno
import json
import os
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator

import h5py
import keras
import mlflow
import pytest
import tensorflow as tf
from mlflow.exceptions import MlflowException

from apps import run_app
from cards import tiny_card
from helpers import REPO, new_store
from image_folders import make_image_folder
from runner import disk
from runner.data import pipeline
from runner.weights import saved

import builders

QUICK = ["trainer.epochs=2", "trainer.steps_per_epoch=3", "trainer.jit_compile=false"]
STORE_FULL = "(sqlite3.OperationalError) database or disk is full"


def run_here(tmp_path, *overrides):
    return run_app("runner", f"hydra.run.dir={tmp_path}/run", *QUICK, *overrides, cwd=tmp_path,
                   env={"MLFLOW_TRACKING_URI": new_store(tmp_path)})


def the_run(tmp_path):
    client = mlflow.MlflowClient(new_store(tmp_path))
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return run


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def full_disk_at_second_checkpoint(monkeypatch) -> list[str]:
    """Keras's second write of a checkpoint (epoch 1's; epoch 0 wrote the best, which the last links)
    stops half-way on a full disk, as a real one does: half a file under the name Keras was given.
    Returns the checkpoint writes so far, whose last is the failed one once it failed."""
    original, calls = keras.Model.save_weights, []

    def save_weights(model, filepath, *args, **kwargs):
        original(model, filepath, *args, **kwargs)
        calls.append(filepath)
        if len(calls) == 2:
            os.truncate(filepath, os.path.getsize(filepath) // 2)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(keras.Model, "save_weights", save_weights)
    return calls


def final_name(partial: str) -> str:
    """best.weights.h5 or last.weights.h5, for the partial name Keras was given (disk.partial_name)."""
    return "best.weights.h5" if "best" in pathlib.Path(partial).name else "last.weights.h5"


def full_once_disk_is(calls: list[str], method):
    def written(*args, **kwargs):
        if len(calls) >= 2:
            raise MlflowException(STORE_FULL)
        return method(*args, **kwargs)
    return written


def leftovers(folder: pathlib.Path) -> list[str]:
    return sorted(path.name for path in folder.rglob("*partial*"))


@pytest.mark.e2e
def test_a_full_disk_is_one_line_naming_the_file_and_the_run_ends_failed(tmp_path, monkeypatch):
    calls = full_disk_at_second_checkpoint(monkeypatch)
    result = run_here(tmp_path)
    written = tmp_path / "run" / "checkpoints" / final_name(calls[-1])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = error_lines(result.stderr)
    assert line.startswith(f"error: no space left on device writing {written} (")
    assert " free there); free some space, then rerun the same command" in line
    # Epoch 0's file is still there, whole; the half-written one is gone.
    with h5py.File(written) as whole:
        assert len(whole.keys())
    assert leftovers(tmp_path / "run") == []
    run = the_run(tmp_path)
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"].startswith("no space left on device writing")


@pytest.mark.e2e
def test_a_store_that_cannot_be_written_leaves_the_run_running_and_says_so(tmp_path, monkeypatch):
    with monkeypatch.context() as patched:
        calls = full_disk_at_second_checkpoint(patched)
        for name in ("set_tag", "set_terminated"):  # from the moment the disk is full
            patched.setattr(mlflow.MlflowClient, name, full_once_disk_is(calls, getattr(mlflow.MlflowClient, name)))
        result = run_here(tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = error_lines(result.stderr)
    running = the_run(tmp_path)
    assert running.info.status == "RUNNING"
    assert "no space left on device writing" in line and final_name(calls[-1]) in line
    assert f"the MLflow store {new_store(tmp_path)} is full (" in line
    assert f"MLflow run {running.info.run_id} stays RUNNING" in line and "rerun the same command" in line
    # What the rerun resumes (tests/test_resume.py proves that it does): this run, its first epoch done.
    [state] = (tmp_path / "outputs" / "resume").glob("*/state.json")
    assert json.loads(state.read_text())["run_id"] == running.info.run_id


def test_each_writers_words_for_a_full_disk_give_the_file_and_the_free_space(tmp_path):
    hdf5 = OSError(errno.ENOSPC, f"Can't synchronously write data (file write failed: filename = '{tmp_path}/a.h5', "
                                 "errno = 28, error message = 'No space left on device')")
    tensorflow = tf.errors.ResourceExhaustedError(
        None, None, "{{function_node __wrapped__SaveV2_dtypes_24_device_/job:localhost/replica:0/task:0/device:CPU:0}} "
                    f"{tmp_path}/ckpt-3_temp/part-00000-of-00001.data-00000-of-00001.tempstate141; "
                    "No space left on device [Op:SaveV2]")
    for error, named in ((hdf5, f"{tmp_path}/a.h5"), (tensorflow, f"{tmp_path}/ckpt-3")):
        line = disk.full_disk_line(error, disk.RESUMES)
        assert line.startswith(f"no space left on device writing {named} (") and " free there)" in line
        assert "\n" not in line
    try:
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as cause:
            raise MlflowException(STORE_FULL) from cause
    except MlflowException as chained:
        assert disk.is_full(chained)
    assert disk.full_disk_line(MlflowException(STORE_FULL), disk.RERUN).startswith("the MLflow store is full")
    assert disk.full_disk_line(OSError(errno.EACCES, "Permission denied"), disk.RERUN) is None


def test_a_write_that_fails_leaves_the_previous_file_and_no_partial_one(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("before")
    with pytest.raises(OSError) as failed, disk.written_whole(target) as partial:
        partial.write_text("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert failed.value.filename == str(target)  # a write() names no file: the final name is given
    assert target.read_text() == "before" and os.listdir(tmp_path) == ["state.json"]


def test_processes_writing_a_shared_file_at_once_each_rename_a_whole_file_of_their_own(tmp_path, monkeypatch):
    target = tmp_path / "verdict.json"
    monkeypatch.setattr(disk.os, "getpid", lambda: 101)
    with disk.written_whole(target, shared=True) as first:
        first.write_text("first, whole")
        monkeypatch.setattr(disk.os, "getpid", lambda: 102)
        with disk.written_whole(target, shared=True) as second:  # starts while the first has not renamed
            second.write_text("second, whole")
        assert target.read_text() == "second, whole" and first.read_text() == "first, whole"
    assert target.read_text() == "first, whole" and os.listdir(tmp_path) == ["verdict.json"]


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 3 MB tmpfs, a disk that fills at once; skipped where mounting is not permitted (not root, a container)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    with tmpfs(folder, "size=3m"):
        yield folder


@contextlib.contextmanager
def tmpfs(folder: pathlib.Path, options: str) -> Iterator[None]:
    """A tmpfs mounted on `folder` with `options` for the block; the test skips where mounting is not
    permitted."""
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                             check=False, capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        # Lazily: a store opened in this process keeps its database open in MLflow's cached engine.
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


@pytest.mark.e2e
def test_on_a_full_tmpfs_the_run_ends_in_one_line_not_a_segfault(small_tmpfs):
    """The store and the run folder on a 3 MB tmpfs with 1.8 MB free: HDF5 used to crash the process
    (exit 139) after writing half of a checkpoint. A subprocess: how the process ends is the point."""
    free = shutil.disk_usage(small_tmpfs).free
    (small_tmpfs / "filler").write_bytes(b"\0" * (free - 1800 * 1024))
    process = subprocess.run([sys.executable, "-m", "runner", "trainer.epochs=2", "trainer.steps_per_epoch=3",
                              "trainer.jit_compile=false"],
                             check=False, cwd=small_tmpfs, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_TRACKING_URI": ""})
    assert process.returncode == 2, process.stderr[-3000:]
    assert "Traceback" not in process.stderr
    [line] = error_lines(process.stderr)
    assert "free there)" in line and ("no space left on device writing" in line or "MLflow store" in line)
    assert leftovers(small_tmpfs / "outputs") == []
    for weights in (small_tmpfs / "outputs").rglob("*.weights.h5"):
        with h5py.File(weights) as whole:
            assert len(whole.keys())


def tiny_model(tmp_path) -> pathlib.Path:
    model = tmp_path / "model.keras"
    network = builders.build_model({"name": "tiny", "input_shape": [8, 8, 3],
                                    "blocks": [{"type": "flatten"}, {"type": "dense", "units": 2, "name": "fc"}]})
    saved.save(model, network, tiny_card(("a", "b"), pipeline.IMAGENET))
    return model


@pytest.mark.e2e
def test_a_full_disk_in_predict_names_its_csv_and_gives_its_own_advice(small_tmpfs, tmp_path):
    model = tiny_model(tmp_path)
    images = make_image_folder(tmp_path / "images", classes=("a",), per_class=1)
    (small_tmpfs / "filler").write_bytes(b"\0" * shutil.disk_usage(small_tmpfs).free)
    output = small_tmpfs / "predictions.csv"
    result = run_app("runner.predict", f"predict.model={model}", f"predict.images={images}", f"predict.output={output}",
                     f"hydra.run.dir={tmp_path}/run")
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip() == (f"error: no space left on device writing {output} (0 B free there); free some "
                                     "space, then rerun the same command")
    assert os.listdir(small_tmpfs) == ["filler"]  # no CSV, whole or partial


@pytest.mark.e2e
def test_a_store_too_full_to_start_a_run_is_one_line_without_mlflows_tracebacks(small_tmpfs, tmp_path):
    store = f"sqlite:///{small_tmpfs / 'mlflow.db'}"
    mlflow.MlflowClient(store).search_experiments()  # creates the store's tables
    (small_tmpfs / "filler").write_bytes(b"\0" * shutil.disk_usage(small_tmpfs).free)
    result = run_app("runner", f"hydra.run.dir={tmp_path}/run", *QUICK, cwd=tmp_path,
                     env={"MLFLOW_TRACKING_URI": store})
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: the MLflow store {store} is full (0 B free there): no MLflow run could "
                                     "start; free some space, then rerun the same command")


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder no one may write in, root included: a read-only tmpfs (skipped where mounting is not
    permitted); for another user, a folder without write permission does the same."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid():
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    with tmpfs(folder, "ro,size=1m"):
        yield folder


@pytest.mark.parametrize("app, output", [("predict", "out/predictions.csv"), ("export", "out")])
def test_an_output_where_nothing_can_be_written_is_one_line_before_any_work(read_only_folder, tmp_path, app, output):
    extra = [f"predict.images={make_image_folder(tmp_path / 'images', classes=('a',), per_class=1)}",
             ] if app == "predict" else ["export.format=tflite"]
    target = read_only_folder / output
    result = run_app(f"runner.{app}", f"{app}.model={tiny_model(tmp_path)}", *extra, f"{app}.output={target}",
                     f"hydra.run.dir={tmp_path}/run")
    assert result.returncode == 2
    what = "a file in a folder" if app == "predict" else "a folder"
    assert result.stderr.strip() == (f"error: {app}.output={target}: {read_only_folder} is not writable; give {what} "
                                     "you can write to")
