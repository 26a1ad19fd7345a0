"""SIGTERM and Ctrl-C in the commands that do not train (evaluate, predict, export, visualize,
describe, compare): one line, the shell's status for the signal, and what was open unwound."""

import os
import signal
import time

import pytest

from runner.training.stops import stopped_in_one_line

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
    # and here that each command's body runs inside it.
    source = open(os.path.join(os.path.dirname(__file__), "..", "runner", app, "__main__.py")).read()
    assert "with reported_as_one_line(), stopped_in_one_line(WHEN_STOPPED):" in source
