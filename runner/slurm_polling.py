"""A sweep's SLURM jobs watched through squeue where SLURM keeps no accounting (runner/slurm_queue.py says
why): a Hydra callback (conf/hydra/runner.yaml) that hands submitit that watcher before the first job."""

import functools
import subprocess
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

SLURM_LAUNCHER = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
NO_ACCOUNTING = "accounting_storage/none"


class SlurmPolling(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.launcher.get("_target_") == SLURM_LAUNCHER and not keeps_accounting():
            # Imported here: submitit configures its logger when imported, and only SLURM sweeps need it.
            from submitit.slurm.slurm import SlurmJob

            from runner.slurm_queue import QueueWatcher

            # Every SLURM job of this process asks the watcher of their class. submitit's own waits up to
            # 600 s between sacct calls; squeue is cheap for slurmctld (it answers from memory), so polls
            # are at most a minute apart and a job SLURM ended is noticed within a minute.
            SlurmJob.watcher = QueueWatcher(delay_s=60)


@functools.cache
def keeps_accounting() -> bool:
    """What `scontrol show config` says of AccountingStorageType; where scontrol cannot say, yes, so
    that submitit is left as it is."""
    try:
        shown = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return True
    for line in shown.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "AccountingStorageType":
            return value.strip() != NO_ACCOUNTING
    return True
