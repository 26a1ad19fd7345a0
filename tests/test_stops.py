"""SIGTERM and Ctrl-C in the commands that do not train (evaluate, predict, export, visualize,
describe, compare): one line, the shell's status for the signal, and what was open unwound."""

import ast
import os
import signal
import sqlite3
import threading
import time

import mlflow
import pytest
from safetensors.numpy import save_file

from apps import run_app
from helpers import new_store
from image_folders import make_image_folder
from reference_resnet import random_state_dict
from runner.evaluate.__main__ import WHEN_STOPPED as EVALUATE_LEAVES
from runner.signals import Stopped, held, interrupt
from runner.training.stops import Trap, stopped_in_one_line

APPS = ("evaluate", "predict", "export", "visualize", "describe", "compare")


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_unwinds_and_ends_in_one_line_with_the_signals_status(capsys, signum, status):
    unwound, before = [], {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    with pytest.raises(SystemExit) as ended:
        with stopped_in_one_line("no partial CSV is left"):
            try:
                os.kill(os.getpid(), signum)
                time.sleep(5)  # the handler raises here, long before
            finally:
                unwound.append(True)  # what a partial file's or an MLflow run's clean-up would do
    assert ended.value.code == status and unwound == [True]
    assert capsys.readouterr().err == f"stopped by {signal.Signals(signum).name}; no partial CSV is left\n"
    assert {sig: signal.getsignal(sig) for sig in before} == before  # the handlers it replaced are back


@pytest.mark.parametrize("app", APPS)
def test_every_command_that_does_not_train_traps_the_stop(app):
    # A signal's timing in a new process is a race with its start-up: the mechanism is tested above,
    # the shell's running of a body inside it in test_app_shell.py, and here that each command gives the
    # shell its WHEN_STOPPED and leaves it to stop at once.
    source = open(os.path.join(os.path.dirname(__file__), "..", "runner", app, "__main__.py")).read()
    [shell] = [node for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "hydra_app"]
    assert ast.unparse(shell.args[3]) == "WHEN_STOPPED"
    assert "stops_at_once" not in {keyword.arg for keyword in shell.keywords}


@pytest.mark.e2e
def test_sigterm_while_evaluate_records_ends_its_run_killed_in_one_line(tmp_path):
    """The real command and a real signal, sent from a thread once the evaluation's run is RUNNING."""
    weights = tmp_path / "resnet18.safetensors"
    save_file(random_state_dict(18), str(weights))
    root = make_image_folder(tmp_path / "imagenette", per_class=8, size=(72, 80))
    store = new_store(tmp_path)
    client = mlflow.MlflowClient(store)
    client.search_experiments()  # creates the store's tables
    sent = threading.Event()

    def stop_once_recording():
        # Its own connection, not MLflow's (which the command's thread shares in this process).
        database = sqlite3.connect(store.removeprefix("sqlite:///"), isolation_level=None)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not sent.is_set():
            if database.execute("SELECT 1 FROM runs WHERE status = 'RUNNING'").fetchall():
                sent.set()
                os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.02)
        database.close()

    late = []  # a signal after the command's own handler is gone lands here, not on pytest
    previous = signal.signal(signal.SIGTERM, lambda *_: late.append(True))
    watcher = threading.Thread(target=stop_once_recording, daemon=True)
    watcher.start()
    try:
        result = run_app("runner.evaluate", "model=resnet18", "model.input_shape=[64,64,3]", "trainer.batch_size=8",
                         f"model.weights={weights}", "data=imagenette", f"data.root={root}",
                         f"hydra.run.dir={tmp_path}/run", env={"MLFLOW_TRACKING_URI": store})
    finally:
        sent.set()
        watcher.join()
        signal.signal(signal.SIGTERM, previous)
    assert not late, "the evaluation ended before the signal: nothing was tested"
    assert result.returncode == 143, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == f"stopped by SIGTERM; {EVALUATE_LEAVES}"
    [run] = client.search_runs([experiment.experiment_id for experiment in client.search_experiments()])
    assert run.info.status == "KILLED"


def test_a_stop_inside_a_held_section_is_raised_as_the_outermost_one_ends():
    done = []
    with pytest.raises(Stopped) as stopped, Trap(interrupt, [signal.SIGTERM]):
        with held():
            with held():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.1)  # the handler runs here, and only notes the stop
                done.append("inner")
            done.append("outer")
    assert done == ["inner", "outer"] and stopped.value.signal == signal.SIGTERM
