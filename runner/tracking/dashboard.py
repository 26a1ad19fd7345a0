"""Where a run or an experiment is in MLflow's dashboard, and how to open it: the one place that builds
the addresses the commands print.

MLflow 3's dashboard shows every experiment either as GenAI (traces, an overview, runs filed under
"Evaluations") or as model training (the runs table), after the "GenAI / Model training" switch at the
top of its sidebar. The switch is kept in the browser's local storage, GenAI in a fresh one, and the
experiment's `mlflow.experimentKind` tag does not move it. A `workflowType` parameter in the query of
the hash route outranks the switch for the page it opens (the UI's WorkflowTypeProvider reads it with
the router's search params); one in the real query, before the `#`, is never read. Dashboards older
than the switch ignore the parameter.
"""

import shlex
from typing import Optional

from runner.tracking.server import is_server

TRAINING_VIEW = "workflowType=machine_learning"
UI_ADDRESS = "http://127.0.0.1:5000"  # where `mlflow ui` listens by default


def how_to_open(uri: str, experiment_id: str, run_id: Optional[str] = None) -> str:
    """How to see the store at `uri` in the dashboard, on the run's page (with `run_id`) or on the
    experiment's runs (without), in the training view: a server's address, or the `mlflow ui` command
    for a local store and the address it will serve."""
    page = f"#/experiments/{experiment_id}" + (f"/runs/{run_id}" if run_id else "") + f"?{TRAINING_VIEW}"
    if is_server(uri):
        return f"open {uri.rstrip('/')}/{page} in a browser"
    return f"mlflow ui --backend-store-uri {shlex.quote(uri)}\n  then open {UI_ADDRESS}/{page}"
