"""Which sweep a job belongs to: the sweep's parent run hands its id to the jobs through the
environment (runner/sweep.py), which launchers' worker processes inherit."""

import os
from typing import Optional

PARENT_RUN_ENV = "RUNNER_SWEEP_PARENT_RUN_ID"


def parent_run_id() -> Optional[str]:
    """The parent run of the sweep this job belongs to; None outside a multirun."""
    return os.environ.get(PARENT_RUN_ENV) or None
