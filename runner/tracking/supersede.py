"""Ending the runs nothing can continue any more.

A run is continued only from its resume point, by the process holding that point's lock. Once a
process holds it and has started (or reopened) the point's run, any other run still RUNNING with
the same tags in the same experiment was left by a process that died (a SIGKILL, a power loss),
and its resume point was discarded (trainer.resume=false, or a damaged state.json deleted): it
would stay RUNNING forever. It is ended KILLED, with a `failure_reason` naming the run that
superseded it.
"""

import mlflow
from mlflow.entities import RunStatus

from runner.tracking.store import paged


def end_superseded(client: mlflow.MlflowClient, run_id: str, tags: dict[str, str]) -> list[str]:
    """Ends every other RUNNING run of run_id's experiment that carries all of `tags`; their ids."""
    experiment = client.get_run(run_id).info.experiment_id
    running = paged(client.search_runs, experiment_ids=[experiment], filter_string="attributes.status = 'RUNNING'")
    # Tag values compared here, not in the filter: a path may hold quotes the filter syntax cannot.
    superseded = [other.info.run_id for other in running
                  if other.info.run_id != run_id and all(other.data.tags.get(k) == v for k, v in tags.items())]
    for other in superseded:
        client.set_tag(other, "failure_reason",
                       f"superseded by run {run_id}: its resume point was taken over, nothing can continue it")
        client.set_terminated(other, RunStatus.to_string(RunStatus.KILLED))
    return superseded
