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

USAGE_EXIT_CODE = 2


class UserError(Exception):
    """A mistake in the config or the data that the user can fix; the message says how."""


class JobError(CompactHydraException):
    """A user mistake in one job of a multirun, named by the job's number and overrides."""


@contextlib.contextmanager
def reported_as_one_line():
    # Here, not at the top: builders imports Keras and TensorFlow (seconds), which a config that
    # fails to compose never needs.
    from builders import SpecError

    try:
        yield
    except (SpecError, UserError) as error:
        full_error = _full_error_wanted()
        if _in_multirun():
            # Hydra prints the job's overrides on the line before, and its HYDRA_FULL_ERROR hint after.
            raise JobError(f"error: job {HydraConfig.get().job.num}: {error}") from (error if full_error else None)
        if full_error:
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USAGE_EXIT_CODE)


def _full_error_wanted() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
