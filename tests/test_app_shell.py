"""The shell every command runs in (runner/shell/app.py): --help that says what the command does, the stop's
line, and no run folder left behind by a command that wrote nothing into it."""

import gc
import json
import pathlib
import signal
import string
import subprocess
import sys
import weakref

import pytest
from omegaconf import OmegaConf

from apps import run_app
from helpers import CONF, REPO, new_store
from runner.architecture import tables
from runner.shell import app as shell, help as app_help, run_folder
from runner.signals import Stopped, interrupt
from runner.training import train as training

APPS = ("runner", "runner.bench", "runner.compare", "runner.describe", "runner.evaluate", "runner.export",
        "runner.predict", "runner.visualize")


def leftovers(tmp_path: pathlib.Path) -> list[str]:
    return sorted(str(path.relative_to(tmp_path)) for path in (tmp_path / "outputs").rglob("*"))


@pytest.mark.e2e
@pytest.mark.parametrize("app", APPS)
def test_help_starts_with_what_the_command_does_and_an_example(app):
    result = run_app(app, "--help")
    assert result.returncode == 0, result.stderr
    first, blank, example = result.stdout.splitlines()[:3]
    summary = sys.modules[f"{app}.__main__"].__doc__.splitlines()[0]
    assert first == summary and first.startswith(f"`python -m {app}")
    assert blank == "" and example.startswith(f"Example: python -m {app} ")
    assert "powered by Hydra" not in result.stdout
    assert "== Config groups ==" in result.stdout and "== Config ==" in result.stdout


@pytest.mark.e2e
@pytest.mark.parametrize("arguments", [("model=alexnet", "--help"), ("--help", "model=alexnet")])
def test_help_shows_the_config_the_overrides_compose(arguments):
    result = run_app("runner.describe", *arguments)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("`python -m runner.describe model=X`") and "  name: alexnet\n" in result.stdout


def test_a_docstring_is_shown_as_written_through_interpolation_and_the_templates_dollars():
    text = "costs $5; ${data.root} and $CONFIG are words here, \\${x} too"
    node = OmegaConf.create({"help": {"header": app_help._literal(text), "template": "${help.header}|$CONFIG"}})
    assert string.Template(node.help.template).substitute(CONFIG="config") == f"{text}|config"


@pytest.mark.e2e
def test_help_of_every_command_needs_no_tensorflow():
    script = ("import json, runpy, sys\nfrom hydra.core.global_hydra import GlobalHydra\nfirst = {}\n"
              f"for app in {APPS!r}:\n"
              "    sys.argv = [app, '--help']\n"
              "    try:\n        runpy.run_module(app, run_name='__main__', alter_sys=True)\n"
              "    except SystemExit as end:\n        assert end.code in (0, None), (app, end.code)\n"
              "    GlobalHydra.instance().clear()\n"
              "print(json.dumps('tensorflow' in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) is False
    assert sum(line.startswith("Example: python -m runner") for line in result.stdout.splitlines()) == len(APPS)


def test_a_command_that_writes_nothing_in_its_run_folder_leaves_none(tmp_path):
    result = run_app("runner.describe", "model=lenet", cwd=tmp_path)
    assert result.returncode == 0 and "c1" in result.stdout
    assert leftovers(tmp_path) == []


def test_a_failed_command_leaves_no_run_folder(tmp_path):
    result = run_app("runner.describe", "model=lenet", "model.input_shape=[4,4,1]", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("error: model.blocks[0]")
    assert leftovers(tmp_path) == []


def test_a_run_folder_with_a_file_of_the_command_stays(tmp_path):
    result = run_app("runner.describe", "model=lenet", "describe.output=${hydra:runtime.output_dir}/lenet.txt",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [report] = (tmp_path / "outputs" / "runs").glob("*/*/lenet.txt")
    assert (report.parent / ".hydra" / "config.yaml").is_file()


@pytest.mark.e2e
def test_a_run_folder_outside_outputs_and_a_sweeps_folders_stay(tmp_path):
    assert run_app("runner.describe", "model=lenet", f"hydra.run.dir={tmp_path}/mine", cwd=tmp_path).returncode == 0
    assert (tmp_path / "mine" / ".hydra").is_dir()
    assert run_app("runner.describe", "-m", "model=lenet", cwd=tmp_path).returncode == 0
    assert len(list((tmp_path / "outputs" / "multirun").glob("*/*/0/.hydra"))) == 1


@pytest.mark.e2e
def test_a_training_runs_folder_stays(tmp_path):
    result = run_app("runner", "trainer.epochs=1", "trainer.steps_per_epoch=2", "trainer.jit_compile=false",
                     cwd=tmp_path, env={"MLFLOW_TRACKING_URI": new_store(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "outputs" / "runs").glob("*/*/.hydra"))) == 1


def test_only_hydras_own_files_under_outputs_go(tmp_path):
    outputs = tmp_path / "outputs"

    def hydras_folder(name: str) -> pathlib.Path:
        folder = outputs / "runs" / "day" / name
        (folder / ".hydra").mkdir(parents=True)
        for file in ("config.yaml", "hydra.yaml", "overrides.yaml"):
            (folder / ".hydra" / file).write_text("{}\n")
        (folder / "__main__.log").touch()
        return folder

    kept = {"a file": hydras_folder("file"), "a log line": hydras_folder("log"), "hydra's extra": hydras_folder("x")}
    (kept["a file"] / "model.keras").touch()
    (kept["a log line"] / "__main__.log").write_text("[INFO] a line\n")
    (kept["hydra's extra"] / ".hydra" / "notes.txt").touch()
    for folder in kept.values():
        run_folder.remove_if_hydras_alone(folder, "__main__.log", outputs)
        assert folder.is_dir()
    elsewhere = hydras_folder("elsewhere")
    run_folder.remove_if_hydras_alone(elsewhere, "__main__.log", outputs / "runs" / "day" / "other")
    assert elsewhere.is_dir()
    gone = hydras_folder("empty")
    run_folder.remove_if_hydras_alone(gone, "__main__.log", outputs)
    assert not gone.exists() and (outputs / "runs" / "day").is_dir()  # the others are still there


def test_a_stop_in_a_command_that_does_not_train_is_trapped_and_said_in_one_line(tmp_path, monkeypatch):
    handlers = []

    def stopped(cfg):
        handlers.append(signal.getsignal(signal.SIGTERM))
        raise Stopped(signal.SIGTERM)

    monkeypatch.setattr(tables, "describe", stopped)
    result = run_app("runner.describe", "model=lenet", cwd=tmp_path)
    assert handlers == [interrupt] and result.returncode == 143
    assert result.stderr == "stopped by SIGTERM; run it again for the report\n"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("stop, status", [(Stopped(signal.SIGTERM), 143), (KeyboardInterrupt(), 130)])
def test_training_traps_stops_itself_and_the_stop_it_raises_is_one_line(tmp_path, monkeypatch, stop, status):
    handlers = []

    def stopped(cfg, run_dir):
        handlers.append(signal.getsignal(signal.SIGTERM))
        raise stop

    monkeypatch.setattr(training, "train", stopped)
    result = run_app("runner", cwd=tmp_path)
    assert handlers and handlers[0] is not interrupt and result.returncode == status
    name = "SIGTERM" if status == 143 else "SIGINT"
    assert result.stderr == f"stopped by {name}; the same command resumes from the last completed epoch\n"


class Node:
    """An object in a reference cycle: only a garbage collection frees it."""

    def __init__(self):
        self.itself = self


def test_what_was_alive_before_a_body_is_left_out_of_its_collections_and_its_garbage_is_collected(
        monkeypatch, tmp_path):
    seen = {}

    @shell.hydra_app("describe", "`python -m example`: an example.", "python -m example", "nothing")
    def example(cfg, run_dir):
        seen["frozen"] = gc.get_freeze_count()
        seen["garbage"] = weakref.ref(Node())

    gc.unfreeze()  # what the session's own fixture froze
    monkeypatch.setattr(sys, "argv", ["example", "--config-path", str(CONF), f"hydra.run.dir={tmp_path}"])
    example()
    assert seen["frozen"] > 100_000, "the modules and TensorFlow's state, frozen before the body"
    assert seen["garbage"]() is None, "the body's cycles, collected after it"
