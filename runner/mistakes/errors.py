"""User mistakes end a command with one line on stderr, never a traceback.

A single run exits with status 2. A job of a multirun raises instead, so the launcher still runs the
other jobs (and the sweep's parent run ends); Hydra prints a CompactHydraException as its message alone.
With HYDRA_FULL_ERROR=1, Hydra's switch for complete stack traces, the error propagates with its traceback.
"""

import contextlib
import os
import sys

from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode

from runner import disk

USAGE_EXIT_CODE = 2


class UserError(Exception):
    """A mistake in the config or the data that the user can fix; the message says how."""


class JobError(CompactHydraException):
    """A user mistake in one job of a multirun, named by the job's number and overrides."""


@contextlib.contextmanager
def reported_as_one_line(full_disk_advice: str = disk.RERUN):
    """A user mistake, or a full disk, as one line; the full disk's ending in the command's
    `full_disk_advice` (training's: disk.RESUMES)."""
    try:
        yield
    except Exception as error:
        if not _a_user_mistake(error):
            full_disk = disk.full_disk_line(error, full_disk_advice)  # a file, a checkpoint, the store: the user's
            if full_disk is None:
                raise
            error = UserError(full_disk)
        full_error = full_error_wanted()
        if _in_multirun():
            # Hydra prints the job's overrides on the line before, and its HYDRA_FULL_ERROR hint after.
            raise JobError(f"error: job {HydraConfig.get().job.num}: {error}") from (error if full_error else None)
        if full_error:
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USAGE_EXIT_CODE)


def _a_user_mistake(error: Exception) -> bool:
    # A SpecError exists only once builders is imported (Keras and TensorFlow: seconds), which a
    # mistake found in the config alone never needs.
    spec_errors = sys.modules.get("builders.errors")
    return isinstance(error, UserError) or (spec_errors is not None and isinstance(error, spec_errors.SpecError))


def full_error_wanted() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
