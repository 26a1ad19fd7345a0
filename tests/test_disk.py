"""Files and folders written whole (runner/disk.py written_whole) and a sqlite store's file from its URI.
A full disk, in the commands: tests/test_full_disk.py."""

import pathlib

import pytest

from runner import disk


def test_a_folder_written_whole_replaces_the_old_one_and_a_failed_one_leaves_it(tmp_path):
    target = tmp_path / "saved_model"
    target.mkdir()
    (target / "old.pb").write_text("old")
    with disk.written_whole(target) as partial:
        (partial / "variables").mkdir(parents=True)
        (partial / "saved_model.pb").write_text("new")
    assert sorted(path.name for path in target.iterdir()) == ["saved_model.pb", "variables"]
    with pytest.raises(RuntimeError), disk.written_whole(target) as partial:
        partial.mkdir()
        (partial / "saved_model.pb").write_text("half")
        raise RuntimeError("the check failed")
    assert (target / "saved_model.pb").read_text() == "new"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["saved_model"]  # no partial folder left


def test_a_killed_writes_leftover_folder_goes_before_the_next_write(tmp_path):
    target = tmp_path / "model.onnx"
    leftover = disk.partial_name(target)
    leftover.mkdir()
    (leftover / "stale").write_text("stale")
    with disk.written_whole(target) as partial:
        assert not partial.exists()
        partial.write_text("whole")
    assert target.read_text() == "whole" and not leftover.exists()


def test_removed_takes_a_file_a_folder_or_nothing(tmp_path):
    (tmp_path / "folder" / "inside").mkdir(parents=True)
    (tmp_path / "file").write_text("x")
    for name in ("folder", "file", "absent"):
        disk.removed(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_a_sqlite_uri_holds_the_databases_absolute_path_and_gives_it_back(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = disk.sqlite_uri(pathlib.Path("outputs/mlflow.db"))
    assert uri == f"sqlite:///{tmp_path.resolve() / 'outputs' / 'mlflow.db'}"
    assert disk.sqlite_file(uri) == tmp_path.resolve() / "outputs" / "mlflow.db"
    assert disk.sqlite_file("sqlite:///relative.db") == pathlib.Path("relative.db")
    for other in ("http://127.0.0.1:5000", "file:///tmp/mlruns", "mlruns"):
        assert disk.sqlite_file(other) is None
