"""submitit's watcher of SLURM jobs, asking squeue instead of sacct, for clusters that keep no accounting.

submitit (behind Hydra's hydra/launcher=submitit_slurm) learns a job's state from `sacct`. Where SLURM keeps
no accounting (AccountingStorageType=accounting_storage/none, usual on small clusters) sacct fails on every
poll, printing its "Slurm accounting storage is disabled" and submitit's warning "Bypassing sacct error";
submitit then knows a job ended only from its result file, and waits forever for a job SLURM ended before
it wrote one (cancelled, out of time, out of memory). squeue answers there: it lists a job while it is
pending or running, and for MinJobAge (300 s by default) after it ends, with its final state; a job it no
longer lists has ended. This module imports submitit, which configures its logger when imported: import it
only for a SLURM sweep (runner/slurm_polling.py).
"""

import typing as tp

from submitit.slurm.slurm import SlurmInfoWatcher

# What a job that squeue no longer lists is said to be: ended, how SLURM no longer says. Any state but
# submitit's incomplete ones (PENDING, RUNNING, UNKNOWN, ...) makes it read the job's result or report it missing.
GONE = "ENDED"
# One line per job, one per task of an array (--array), finished ones included (--states=all).
SQUEUE = ["squeue", "--me", "--noheader", "--array", "--states=all", "--format=%i|%T|%N"]


class QueueWatcher(SlurmInfoWatcher):
    def _make_command(self) -> tp.Optional[tp.List[str]]:
        return SQUEUE if self._registered - self._finished else None

    def read_info(self, string: tp.Union[bytes, str]) -> tp.Dict[str, tp.Dict[str, str]]:
        """{job id: {JobID, State, NodeList}} as submitit reads sacct's, for every job it waits for."""
        text = string.decode() if isinstance(string, bytes) else string
        listed = {}
        for line in text.splitlines():
            job_id, state, nodes = line.split("|")
            listed[job_id] = {"JobID": job_id, "State": state, "NodeList": nodes}
        gone = {job_id: {"JobID": job_id, "State": GONE} for job_id in self._registered - listed.keys()}
        return {**gone, **listed}
