"""Running the Hydra apps in this process, as `python -m runner...` would, without a new interpreter.

A new process costs seconds of TensorFlow and MLflow imports; the app's own code path is the same:
Hydra parses the command line, composes conf/, runs the job or the multirun (with its callbacks),
and a user mistake ends in SystemExit(2), whose code is returned here. Subprocesses stay for what
needs one: signals, several processes, the interpreter's own start.
"""

import contextlib
import dataclasses
import importlib
import io
import os
import pathlib
import sys
import traceback
from typing import Optional

from absl import logging as absl_logging
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

from helpers import CONF
from runner.environment import environment_set
from runner.tracking.sweep_parent import PARENT_RUN_ENV

# What a developer's shell may set that would change what a command does: the store it records in,
# Hydra's traceback mode. `env=SHELL_UNSET` runs a command without them.
SHELL_UNSET = {"MLFLOW_TRACKING_URI": None, "HYDRA_FULL_ERROR": None}


@dataclasses.dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_app(app: str, *args: str, cwd: Optional[pathlib.Path] = None, env: Optional[dict] = None) -> Result:
    """`python -m <app> <args>` (app: runner, runner.bench, runner.compare, ...) in this process, in
    `cwd`, with `env` set in the environment (a None value unsets the variable); both are restored
    afterwards."""
    main = importlib.import_module(f"{app}.__main__").main
    # Hydra's logging set-up closes every handler there is, and absl's closes its stream unless that
    # is the process's own: pytest's capture would be closed under it.
    absl_logging.get_absl_handler().python_handler.stream = sys.__stderr__
    out, err = io.StringIO(), io.StringIO()
    with environment_set(**(env or {})), _working_directory(cwd), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        saved_argv = sys.argv
        sys.argv = [app, "--config-path", str(CONF), *args]
        try:
            main()
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except Exception:  # what the interpreter does with an exception nothing caught (HYDRA_FULL_ERROR=1)
            traceback.print_exc()
            code = 1
        finally:
            sys.argv = saved_argv
            _forget_hydra()
            # A sweep that raised ends at the process's exit (atexit), and until then its jobs' parent
            # is in the environment: this process goes on to other tests, whose runs must not join it.
            os.environ.pop(PARENT_RUN_ENV, None)
    return Result(code, out.getvalue(), err.getvalue())


def _forget_hydra() -> None:
    """Hydra keeps the last job's config in singletons; the next test must not see it (a stale
    multirun mode would turn a single run's one-line error into a sweep job's)."""
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None


@contextlib.contextmanager
def _working_directory(cwd: Optional[pathlib.Path]):
    saved = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved)
