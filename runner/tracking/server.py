"""A tracking server over HTTP: asked once before a run is prepared, and how long MLflow may wait on it.

MLflow's own settings (environment variables, read at every request) retry a request to a dead
server for over four minutes (7 retries, backoff factor 2) and wait 120 s for each answer. The
check before training makes one request; a run's requests give up after about 15 s of refused
connections. A user's own setting of any of these variables wins in the run.
"""

import contextlib
import os
import urllib.parse
from typing import Iterator, Optional

import mlflow
import requests
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig

from runner.environment import environment_set
from runner.mistakes.errors import UserError
from runner.mistakes.messages import causes, first_line
from runner.tracking.store import store_uri

LOOPBACK = ("127.0.0.1", "localhost", "::1")
CHECK_TIMEOUT_S = 10
CHECK_REQUESTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(CHECK_TIMEOUT_S)}
# Waits of 0, 2, 4 and 8 s between attempts (urllib3's backoff), plus up to 1 s of MLflow's jitter each.
RUN_REQUESTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "4", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


class ServerLost(UserError):
    """The tracking server stopped answering during a run; the message says what waits for the rerun."""


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def check_store(cfg: DictConfig) -> None:
    """A tracking server that does not answer one request within CHECK_TIMEOUT_S is a UserError
    naming the URI, before anything is built (other stores are opened, or created, by the run)."""
    uri = store_uri(cfg)
    if not is_server(uri):
        return
    key = "MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI") else "tracking.uri"
    try:
        _ask(uri)
    except MlflowException as error:
        reason = unanswered(error)
        if reason is None:
            raise UserError(f"{key}={uri}: the server there did not answer as an MLflow tracking server: "
                            f"{_without_response_body(error)}") from None
        raise UserError(f"{key}={uri}: no MLflow tracking server answers there ({reason}); {_what_to_do(uri)}, "
                        f"or unset {key} to record in the local sqlite store under outputs/") from None


def answers(uri: str) -> bool:
    """Whether the server answers one request now, within CHECK_TIMEOUT_S."""
    try:
        _ask(uri)
    except MlflowException:
        return False
    return True


def _ask(uri: str) -> None:
    """The cheapest request every tracking server answers, once, without retries."""
    with request_settings(CHECK_REQUESTS, replace=True):
        mlflow.MlflowClient(uri).search_experiments(max_results=1)


def unanswered(error: BaseException) -> Optional[str]:
    """Why a request found no server (a refused connection, a timeout), from the causes of an MLflow
    error; None when the server answered (with an error of its own)."""
    chain = list(causes(error))
    if any(isinstance(cause, requests.exceptions.Timeout) for cause in chain):
        return "timed out"
    if not any(isinstance(cause, requests.exceptions.ConnectionError) for cause in chain):
        return None
    # The socket's own words, the deepest cause: "Connection refused", "Name or service not known".
    words = [cause.strerror for cause in chain if isinstance(cause, OSError) and cause.strerror]
    return words[-1][0].lower() + words[-1][1:] if words else "the connection failed"


@contextlib.contextmanager
def request_settings(settings: dict[str, str], replace: bool) -> Iterator[None]:
    """MLflow's HTTP settings in the environment for the block; `replace=False` keeps the user's own."""
    wanted = settings if replace else {name: value for name, value in settings.items() if name not in os.environ}
    with environment_set(**wanted):
        yield


def _what_to_do(uri: str) -> str:
    address = urllib.parse.urlparse(uri)
    if address.hostname not in LOOPBACK:
        return "check that it runs and that this machine reaches it"
    port = address.port or (443 if address.scheme == "https" else 80)
    return f"start it (mlflow server --host {address.hostname} --port {port})"


def _without_response_body(error: BaseException) -> str:
    """MLflow's message without the response's body (a page of HTML, often)."""
    return first_line(str(error).split(". Response body:")[0])[:300] or type(error).__name__
