"""Epoch metrics for a tracking server, written on a thread of their own so training never waits on it.

One write is in flight at a time. While a dead server's request retries (as long as
runner/tracking/server.py lets MLflow retry), the next epochs wait here and go together in the
next write; a write that failed goes again with them, unchanged: a SQL store skips a metric it
already holds with the same key, step, timestamp and value, so a write that landed but whose
answer was lost is not counted twice.

Not MLflow's own asynchronous logging (log_batch(synchronous=False)): it drops a batch whose
retries ran out, runs ten at once, and its end (set_terminated, and at exit) waits for every queued
batch's retries, minutes behind a dead server.
"""

import concurrent.futures
import sys
from typing import Optional

import mlflow
from mlflow.entities import Metric

from runner.tracking.server import answers, unanswered


class MetricQueue:
    def __init__(self, client: mlflow.MlflowClient, run_id: str):
        self._client = client
        self._run_id = run_id
        self._writer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-metrics")
        self._waiting: list[Metric] = []
        self._in_flight: Optional[concurrent.futures.Future] = None
        self._in_flight_metrics: list[Metric] = []
        self.failure: Optional[str] = None  # why the last write failed; None: it landed

    def put(self, metrics: list[Metric]) -> None:
        """Queue `metrics` and send what waits, unless a write is still in flight."""
        self._waiting.extend(metrics)
        self._collect(wait=False)
        self._send()

    def drain(self) -> list[Metric]:
        """Wait for the write in flight, then send what waits if the server answers now; returns the
        metrics the server does not hold (empty when it took everything)."""
        self._collect(wait=True)
        if self._waiting and answers(self._client.tracking_uri):
            self._send()
            self._collect(wait=True)
        return self.unsent()

    def unsent(self) -> list[Metric]:
        return list(self._waiting)

    def close(self) -> None:
        """Wait for the write in flight (its retries are bounded) and stop the thread."""
        self._collect(wait=True)
        self._writer.shutdown(wait=True)

    def _send(self) -> None:
        if self._in_flight is None and self._waiting:
            self._in_flight_metrics, self._waiting = self._waiting, []
            self._in_flight = self._writer.submit(self._client.log_batch, self._run_id,
                                                  metrics=self._in_flight_metrics, synchronous=True)

    def _collect(self, wait: bool) -> None:
        """The write in flight's outcome, once it has one (`wait`: wait for it)."""
        if self._in_flight is None or not (wait or self._in_flight.done()):
            return
        error = self._in_flight.exception()
        self._in_flight = None
        if error is None:
            if self.failure:
                print(f"the MLflow tracking server {self._client.tracking_uri} answers again; "
                      "the metrics it missed are recorded", file=sys.stderr)
            self.failure = None
            return
        reason = unanswered(error)
        if reason is None:
            raise error  # the server answered, and refused the write: a bug, not an outage
        self._waiting[:0] = self._in_flight_metrics
        if not self.failure:  # said once per outage
            print(f"warning: the MLflow tracking server {self._client.tracking_uri} does not answer ({reason}); "
                  "training goes on, and its metrics wait to be sent", file=sys.stderr)
        self.failure = reason
