"""One shell for every command: Hydra's main over conf/, and what every command's body runs inside.

A command's __main__.py names its config, its body (a function of the config and Hydra's run folder,
whose imports of TensorFlow wait until the config has composed) and its options; the shell does the
rest the same way for every command:

* a mistake met while Hydra composes the config ends in one line (`error: ...`) and exit status 2, as a
  mistake the command finds itself does (runner/mistakes/errors.py); Hydra reports everything else as it does
  (a YAML error as a full traceback, its own errors over several lines, both with exit status 1). With
  HYDRA_FULL_ERROR=1 Hydra's own behaviour, complete tracebacks, is left as it is;
* every key of the config must be one the schema declares; then TensorFlow is imported without its
  start-up lines, the libraries' INFO lines are quietened, and the GPU note said where the command asks;
* the body runs with a mistake or a full disk reported in one line, SIGTERM and Ctrl-C in one line, what
  was alive before it kept out of its garbage collections, and Keras's session cleared after it (a
  multirun runs its jobs in one process);
* a run folder left holding only what Hydra wrote goes (runner/shell/run_folder.py);
* --help starts with what the command does and an example (runner/shell/help.py).
"""

import contextlib
import functools
import gc
import os
import pathlib
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

import hydra
import yaml
from hydra._internal import utils as hydra_internals
from hydra.core.hydra_config import HydraConfig
from hydra.errors import (
    ConfigCompositionException,
    OverrideParseException,
    SearchPathException,
)
from hydra.types import RunMode
from omegaconf import DictConfig

from runner import disk
from runner.config import bounded_yaml, schema
from runner.mistakes.errors import (
    USAGE_EXIT_CODE,
    JobError,
    full_error_wanted,
    reported_as_one_line,
)
from runner.mistakes.known_keys import check_known_keys
from runner.mistakes.usage_errors import hydra_error_line, yaml_error_line
from runner.shell import run_folder
from runner.shell.help import with_app_help
from runner.shell.logs import import_tensorflow_quietly, quiet_libraries
from runner.signals import Stopped
from runner.training.stops import stopped_in_one_line

CONF = str(pathlib.Path(__file__).resolve().parents[2] / "conf")
# What composing the config raises for a mistake in it; Hydra's other errors (a callback that fails
# to instantiate) keep its report.
USAGE_ERRORS = (yaml.MarkedYAMLError, ConfigCompositionException, OverrideParseException, SearchPathException,
                JobError)
Body = Callable[[DictConfig, pathlib.Path], Any]


def hydra_app(config_name: str, about: str, example: str, when_stopped: str, *, tensorflow: bool = True,
              gpu_note: bool = False, stops_at_once: bool = True, full_disk_advice: str = disk.RERUN,
              download_bars: bool = True) -> Callable[[Body], Callable[[], Any]]:
    """The command over conf/<config_name>.yaml whose body is the decorated `body(cfg, run_dir)`; the
    command returns what the body returns (Hydra's Optuna sweeper reads training's objective).

    about: the command's docstring and example: one command line, both for --help. when_stopped: what
    SIGTERM or Ctrl-C leave, said after the stop. tensorflow: false for a command that never imports it.
    gpu_note: say when the trainer asks for a GPU this machine lacks. stops_at_once: false for training,
    whose loop stops at a step boundary (runner/training/stops.py) and raises the stop for the shell to
    report. full_disk_advice: how a full disk's line ends. download_bars: false hides MLflow's bar per
    artifact download (a bar per small file is noise).
    """

    def decorate(body: Body) -> Callable[[], Any]:
        @functools.wraps(body)
        def job(cfg: DictConfig) -> Any:
            hydra_config = HydraConfig.get()
            run_dir = pathlib.Path(hydra_config.runtime.output_dir)
            try:
                with reported_as_one_line():
                    check_known_keys(cfg)
                if tensorflow:
                    import_tensorflow_quietly()
                quiet_libraries()
                if gpu_note:
                    from runner.shell.gpu_notice import say_when_no_gpu  # imports TensorFlow

                    say_when_no_gpu(cfg.trainer)
                if not download_bars:
                    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
                with reported_as_one_line(full_disk_advice), _stops(when_stopped, stops_at_once), \
                        _objects_of_its_own(tensorflow):
                    return body(cfg, run_dir)
            finally:
                if hydra_config.mode == RunMode.RUN:  # a sweep's folders are the sweep's record
                    run_folder.remove_if_hydras_alone(run_dir, f"{hydra_config.job.name}.log",
                                                      pathlib.Path(hydra_config.runtime.cwd) / "outputs")

        hydra_main = hydra.main(config_path=CONF, config_name=config_name, version_base="1.3")(job)

        @functools.wraps(body)
        def main() -> Any:
            schema.register()
            with _composition_errors_in_one_line(), bounded_yaml.loading(), with_app_help(about, example):
                return hydra_main()

        return main

    return decorate


def _stops(consequence: str, at_once: bool) -> contextlib.AbstractContextManager:
    return stopped_in_one_line(consequence) if at_once else _stop_raised_in_one_line(consequence)


@contextlib.contextmanager
def _stop_raised_in_one_line(consequence: str) -> Iterator[None]:
    """Training traps SIGTERM and Ctrl-C itself while it trains: the stop it raises, or a Ctrl-C before,
    ends in one line and the shell's status for the signal; SIGTERM before then ends the process as ever."""
    try:
        yield
    except KeyboardInterrupt as interrupt:
        stop = interrupt if isinstance(interrupt, Stopped) else Stopped(signal.SIGINT)
        print(f"stopped by {stop.signal.name}; {consequence}", file=sys.stderr)
        sys.exit(stop.exit_code)


@contextlib.contextmanager
def _objects_of_its_own(tensorflow: bool) -> Iterator[None]:
    """The body's objects apart from the process's, and Keras's session cleared after it.

    What is alive as the body starts (the modules, TensorFlow's and Hydra's state: about half a million
    objects) is frozen out of Python's garbage collections (gc.freeze), so that the collection Keras's
    clear_session makes walks only what the body made: half a second less a job (a ten-job LeNet multirun,
    imports included: 33.5 s, frozen 28.0 s). What was alive at the start and dies later, such as the
    job's config, is never collected: about a megabyte a job (that multirun's peak: 1,014 MiB, 1,005 MiB
    unfrozen).
    """
    gc.freeze()
    try:
        yield
    finally:
        if tensorflow:
            import keras  # imported by then: the command imports TensorFlow

            keras.backend.clear_session()


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
