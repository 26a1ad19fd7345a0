"""What a run recorded on a tracking server adds to runner/tracking/run.py: requests that give up in
seconds (server.py), metrics sent on a thread of their own (metric_queue.py), and, when the server
stops answering, an end in one line that leaves the run RUNNING there for the rerun to continue
from its resume point, which holds every epoch's metrics."""

import contextlib
import logging
from typing import Optional

import mlflow
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException

from runner.tracking.metric_queue import MetricQueue
from runner.tracking.server import CHECK_REQUESTS, RUN_REQUESTS, ServerLost, answers, request_settings, unanswered


class OnServer:
    def __init__(self, uri: str, resumable: bool, again: str = ""):
        """resumable: a training run, whose resume point holds its epochs' metrics; `again`: what the
        same command needs to resume it."""
        self._uri = uri
        self._resumable = resumable
        self._again = again
        self._settings = contextlib.ExitStack()
        self._metrics: Optional[MetricQueue] = None
        self._run_id: Optional[str] = None

    def open(self) -> None:
        """MLflow's HTTP settings for the run's requests, until close(); urllib3's line per retry
        stays quiet (the metric queue says once that the server does not answer)."""
        self._settings.enter_context(request_settings(RUN_REQUESTS, replace=False))
        retries = logging.getLogger("urllib3.connectionpool")
        self._settings.callback(retries.setLevel, retries.level)
        retries.setLevel(logging.ERROR)

    def started(self, client: mlflow.MlflowClient, run_id: str) -> None:
        self._run_id = run_id
        self._metrics = MetricQueue(client, run_id)

    def put(self, metrics: list[Metric]) -> None:
        self._metrics.put(metrics)

    def confirm(self) -> None:
        """Wait until the server holds every metric put, or raise ServerLost."""
        if self._metrics and self._metrics.drain():
            raise ServerLost(self._message(self._metrics.failure or "no answer"))

    def ended_without_server(self, exc: Optional[BaseException]) -> bool:
        """Whether the run ends with the server gone (then it is left RUNNING there): a ServerLost, an
        MLflow error of a server that stopped answering, a run that would finish without the server
        holding its metrics (both raised instead as the ServerLost line), or a failed metric write and
        no answer now, where each request of the run's end would spend its retries to fail."""
        lost = self.lost(exc) if exc is not None else self._unconfirmed()
        if lost is None and not self._gone():
            return False
        with request_settings(CHECK_REQUESTS, replace=True), contextlib.suppress(MlflowException):
            mlflow.end_run("FAILED")  # one quick try; the fluent API forgets the run (and its system metrics)
        if lost is not None and lost is not exc:
            raise lost from None  # the MLflow error's traceback says nothing the line does not
        return True

    def lost(self, exc: Optional[BaseException]) -> Optional[ServerLost]:
        """The ServerLost of an exception by a server that stopped answering; None for any other."""
        if isinstance(exc, ServerLost):
            return exc
        reason = unanswered(exc) if isinstance(exc, MlflowException) else None
        return None if reason is None else ServerLost(self._message(reason))

    def _unconfirmed(self) -> Optional[ServerLost]:
        try:
            self.confirm()
        except ServerLost as lost:
            return lost
        return None

    def close(self) -> None:
        if self._metrics:
            self._metrics.close()
        self._settings.close()

    def _gone(self) -> bool:
        if self._metrics is None:
            return False
        self._metrics.close()
        return self._metrics.failure is not None and not answers(self._uri)

    def _message(self, reason: str) -> str:
        lost = f"the MLflow tracking server {self._uri} stopped answering ({reason})"
        if self._run_id is None:
            return f"{lost} as the run started: start it, and run the same command again"
        self._metrics.close()
        if not self._resumable:
            return f"{lost}: run {self._run_id} is incomplete; start the server and run the same command again"
        lacks = "its latest metrics and " if self._metrics.unsent() else ""
        return (f"{lost}: run {self._run_id} lacks {lacks}its end, which the resume point holds; start the server "
                f"and run the same command again{self._again} to record them")
