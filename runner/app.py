"""One entry for every command: Hydra's main over conf/, with the user's mistakes in one line.

Hydra composes the config before the command's function runs, and reports what fails there itself:
a YAML error as a full traceback, its own errors over several lines, both with exit status 1. Here
such a mistake ends in one line (`error: ...`) and exit status 2, as a mistake the command finds
itself does (runner/errors.py); everything else keeps Hydra's report. With HYDRA_FULL_ERROR=1
Hydra's own behaviour, complete tracebacks, is left as it is.
"""

import contextlib
import functools
import pathlib
import sys
from collections.abc import Callable
from typing import Any

import hydra
import yaml
from hydra._internal import utils as hydra_internals
from hydra.errors import (
    ConfigCompositionException,
    OverrideParseException,
    SearchPathException,
)
from omegaconf import DictConfig

from runner import bounded_yaml
from runner.errors import (
    USAGE_EXIT_CODE,
    JobError,
    full_error_wanted,
    reported_as_one_line,
)
from runner.known_keys import check_known_keys
from runner.logs import import_tensorflow_quietly
from runner.usage_errors import hydra_error_line, yaml_error_line

CONF = str(pathlib.Path(__file__).resolve().parents[1] / "conf")
# What composing the config raises for a mistake in it; Hydra's other errors (a callback that fails
# to instantiate) keep its report.
USAGE_ERRORS = (yaml.MarkedYAMLError, ConfigCompositionException, OverrideParseException, SearchPathException,
                JobError)


def hydra_app(config_name: str, tensorflow: bool = True) -> Callable:
    """@hydra.main for a command over conf/<config_name>.yaml; its function gets a config whose
    every key the schema declares, and (unless `tensorflow` is false) TensorFlow imported without
    its start-up lines, so the command's own imports of it must wait for the function."""

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
        @functools.wraps(task)
        def checked(cfg: DictConfig) -> Any:
            with reported_as_one_line():
                check_known_keys(cfg)
            if tensorflow:
                import_tensorflow_quietly()
            return task(cfg)

        hydra_main = hydra.main(config_path=CONF, config_name=config_name, version_base="1.3")(checked)

        @functools.wraps(task)
        def main() -> Any:
            with _composition_errors_in_one_line(), bounded_yaml.loading():
                return hydra_main()

        return main

    return decorate


@contextlib.contextmanager
def _composition_errors_in_one_line():
    # Hydra catches what composing raises in run_and_report, which prints and exits; Hydra has no
    # hook for its reports, so this hands it a function that reports the user's mistakes first.
    hydra_report = hydra_internals.run_and_report
    hydra_internals.run_and_report = lambda function: hydra_report(lambda: _reported_as_one_line(function))
    try:
        yield
    finally:
        hydra_internals.run_and_report = hydra_report


def _reported_as_one_line(function: Callable[[], Any]) -> Any:
    try:
        return function()
    except USAGE_ERRORS as error:
        if full_error_wanted():
            raise
        print(_line(error), file=sys.stderr)
        sys.exit(USAGE_EXIT_CODE)
    except Exception as error:
        if full_error_wanted() or not _a_lost_cluster_job(error):
            raise
        # submitit's first two lines name the job and its SLURM state; the rest is the job's log, on disk
        what = " ".join(str(error).splitlines()[:2])
        print(f"error: a sweep job ended without a result: {what}; rerun the sweep to run it again", file=sys.stderr)
        sys.exit(USAGE_EXIT_CODE)


def _a_lost_cluster_job(error: Exception) -> bool:
    """submitit's word for a SLURM job that ended without a result (cancelled, preempted, out of time): the
    cluster's doing, not a mistake in the code; submitit is imported only by the sweeps that use it."""
    lost = getattr(sys.modules.get("submitit.core.utils"), "UncompletedJobError", None)
    return lost is not None and isinstance(error, lost)


def _line(error: Exception) -> str:
    if isinstance(error, JobError):  # a multirun's job: its line is already written
        return str(error)
    if isinstance(error, yaml.MarkedYAMLError):
        return f"error: {yaml_error_line(error)}"
    return f"error: {hydra_error_line(error)}"
