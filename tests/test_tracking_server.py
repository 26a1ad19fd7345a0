"""A team's shared tracking server: a real `mlflow server` process on loopback, training jobs logging
to it over HTTP, the runs read back through the server; and the server absent, killed mid-run, and
cut off for a few epochs."""

import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import mlflow
import pytest

from apps import SHELL_UNSET, run_app
from helpers import server_environment
from runner.tracking.server import request_settings

EPOCHS = 5
EPOCH_METRICS = ("loss", "top1", "val_loss", "val_top1", "lr", "epoch_seconds")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MlflowServer:
    """`mlflow server` on 127.0.0.1 with a sqlite database and an artifact folder; killed, it starts
    again on the same port and store."""

    def __init__(self, folder: pathlib.Path):
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> None:
        log = self.folder / "server.log"  # a file, not a pipe: nothing reads it while the server runs
        with open(log, "a") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", "1", "--backend-store-uri", f"sqlite:///{self.folder}/server.db",
                 "--artifacts-destination", str(self.folder / "artifacts")],
                stdout=output, stderr=output, env=server_environment(),
                start_new_session=True)  # its own process group: the CLI serves from a uvicorn child
        deadline = time.monotonic() + 180
        while not answers(self.url):
            assert self.process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.3)

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)  # no goodbye to the connections it holds
        self.process.wait(timeout=30)
        while answers(self.url):  # the uvicorn child goes a moment after the CLI
            time.sleep(0.05)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module: a start costs seconds. Each test records in an experiment of its own."""
    running = MlflowServer(tmp_path_factory.mktemp("server"))
    running.start()
    yield running
    running.kill()


class Relay:
    """A TCP relay on loopback in front of the server, to cut it off and back within a run (a server's
    start costs too many seconds): while down, it drops every connection through it and closes each
    new one at once, as a server dying under its requests would; `cut` counts those."""

    def __init__(self, target_port: int):
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._target = target_port
        self._up = True
        self._connections: set[socket.socket] = set()
        self.cut = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def down(self) -> None:
        self._up = False
        for connection in list(self._connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def up(self) -> None:
        self._up = True

    def close(self) -> None:
        self.down()
        self._listener.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # the listener closed
            while True:
                client, _ = self._listener.accept()
                if not self._up:
                    client.close()
                    self.cut += 1
                    continue
                upstream = socket.create_connection(("127.0.0.1", self._target))
                self._connections |= {client, upstream}
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
        self._connections -= {source, sink}


def training(uri: str, folder: pathlib.Path, experiment: str) -> list[str]:
    return [f"tracking.uri={uri}", f"tracking.experiment={experiment}", f"hydra.run.dir={folder}/run",
            f"trainer.epochs={EPOCHS}", "trainer.steps_per_epoch=2", "trainer.jit_compile=false"]


def saved_epochs(folder: pathlib.Path) -> int:
    """Epochs the resume point under `folder` (where the command ran) holds; 0 without one."""
    epochs = [0]
    for state in (folder / "outputs" / "resume").glob("*/state.json"):
        with contextlib.suppress(OSError, ValueError):
            epochs.append(json.loads(state.read_text())["epoch"])
    return max(epochs)


@contextlib.contextmanager
def in_turn(*steps):
    """While the block trains, a thread runs each (condition, action) of `steps` in turn: the action
    once its condition holds."""
    pending = list(steps)
    stop = threading.Event()

    def watch():
        while pending and not stop.wait(0.02):
            if pending[0][0]():
                pending.pop(0)[1]()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
    assert not pending, f"training ended before {len(pending)} of the steps"


def the_run(url: str, experiment: str) -> mlflow.entities.Run:
    client = mlflow.MlflowClient(url)
    [run] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return run


def epochs_logged(url: str, run_id: str) -> dict[str, list[int]]:
    client = mlflow.MlflowClient(url)
    return {key: sorted(metric.step for metric in client.get_metric_history(run_id, key)) for key in EPOCH_METRICS}


def test_request_settings_keep_a_users_own_unless_replacing_and_go_when_the_block_ends(monkeypatch):
    retries, timeout = "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"
    monkeypatch.setenv(retries, "0")  # the user's own
    monkeypatch.delenv(timeout, raising=False)
    with request_settings({retries: "4", timeout: "30"}, replace=False):
        assert os.environ[retries] == "0" and os.environ[timeout] == "30"
        with request_settings({retries: "4", timeout: "30"}, replace=True):
            assert os.environ[retries] == "4"
        assert os.environ[retries] == "0"
    assert os.environ[retries] == "0" and timeout not in os.environ


@pytest.mark.e2e
def test_a_store_where_nothing_listens_is_refused_in_seconds_before_anything_is_built(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    began = time.monotonic()
    result = run_app("runner", *training(uri, tmp_path, "absent"), cwd=tmp_path, env=SHELL_UNSET)
    took = time.monotonic() - began
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith(f"error: tracking.uri={uri}: no MLflow tracking server answers there"), lines
    assert "mlflow server --host 127.0.0.1" in lines[0] and "unset tracking.uri" in lines[0]
    assert took < 15, f"{took:.0f} s to refuse it (MLflow's own retries: over four minutes)"
    assert not (tmp_path / "outputs").exists(), "no run, no resume point, no local store instead"


def test_a_sweep_on_a_store_where_nothing_listens_is_refused_before_its_parent_or_any_job(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    result = run_app("runner", "-m", *training(uri, tmp_path, "absent"), "trainer.seed=1,2", cwd=tmp_path,
                     env=SHELL_UNSET)
    lines = result.stderr.strip().splitlines()
    # A callback's exception is only a warning to Hydra, which would launch the jobs anyway.
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith(f"error: tracking.uri={uri}: no MLflow tracking server answers there"), lines
    assert "Launching" not in result.stdout and not (tmp_path / "outputs" / "resume").exists()


@pytest.mark.e2e
def test_a_server_killed_mid_run_stalls_nothing_and_the_rerun_completes_the_run(server, tmp_path):
    command = training(server.url, tmp_path, "killed")
    began = time.monotonic()
    with in_turn((lambda: saved_epochs(tmp_path) >= 1, server.kill)):
        lost = run_app("runner", *command, cwd=tmp_path, env=SHELL_UNSET)
    took = time.monotonic() - began
    server.start()  # the same port and store, before the asserts: the next tests need it
    last = lost.stderr.strip().splitlines()[-1:]
    assert lost.returncode == 2 and last and last[0].startswith(
        f"error: the MLflow tracking server {server.url} stopped answering (connection refused)"), \
        (lost.returncode, lost.stdout[-3000:], lost.stderr[-3000:])
    last = last[0]
    assert "resume point" in last and "run the same command again" in last and "Traceback" not in lost.stderr
    # Training went on: a write's retries end in ~15 s (MLflow's own took 4 minutes per request, 762 s in all).
    assert took < 90, f"{took:.0f} s"
    assert saved_epochs(tmp_path) == EPOCHS, "the resume point holds every epoch for the rerun"

    done = run_app("runner", *command, cwd=tmp_path, env=SHELL_UNSET)
    assert done.returncode == 0, done.stderr[-3000:]
    run = the_run(server.url, "killed")
    assert run.info.status == "FINISHED" and "failure_reason" not in run.data.tags
    assert epochs_logged(server.url, run.info.run_id) == {key: list(range(EPOCHS)) for key in EPOCH_METRICS}
    evaluated = mlflow.MlflowClient(server.url).get_metric_history(run.info.run_id, "eval_top1")
    assert [metric.step for metric in evaluated] == [EPOCHS]
    assert saved_epochs(tmp_path) == 0, "the finished run's resume point is gone"


@pytest.mark.e2e
def test_a_job_logs_over_http_and_a_server_cut_off_for_epochs_gets_them_when_it_answers_again(server, tmp_path):
    relay = Relay(server.port)
    # No retries (the user's setting wins): a write in the outage fails at once, as one whose
    # retries ran out would, and waits for the next.
    env = SHELL_UNSET | {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    with in_turn((lambda: saved_epochs(tmp_path) >= 1, relay.down), (lambda: relay.cut >= 1, relay.up)):
        result = run_app("runner", *training(relay.url, tmp_path, "cut-off"), cwd=tmp_path, env=env)
    relay.close()
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"warning: the MLflow tracking server {relay.url} does not answer" in result.stderr
    assert f"the MLflow tracking server {relay.url} answers again" in result.stderr
    run = the_run(server.url, "cut-off")
    assert run.info.status == "FINISHED" and run.data.metrics["eval_top1"] > 0
    assert epochs_logged(server.url, run.info.run_id) == {key: list(range(EPOCHS)) for key in EPOCH_METRICS}
    artifacts = {artifact.path for artifact in mlflow.MlflowClient(server.url).list_artifacts(run.info.run_id)}
    assert {"config.yaml", "architecture.md"} <= artifacts
    assert list((server.folder / "artifacts").rglob("config.yaml")), "artifacts went through the server to its store"
