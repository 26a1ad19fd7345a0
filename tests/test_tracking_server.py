"""A team's shared tracking server: a real `mlflow server` process, a training job logging to it
over HTTP, the run read back through the server."""

import socket
import subprocess
import sys
import time
import urllib.request

import mlflow
import pytest

from apps import SHELL_UNSET, run_app
from helpers import REPO


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """`mlflow server` on 127.0.0.1 with a sqlite database and an artifact folder; its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path}/server.db", "--artifacts-destination", str(tmp_path / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "mlflow server did not start"
        time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.mark.slow
def test_a_training_job_logs_to_a_tracking_server_over_http(server, tmp_path):
    result = run_app("runner", f"tracking.uri={server}", f"hydra.run.dir={tmp_path}/run", "trainer.epochs=1",
                     "trainer.steps_per_epoch=3", "trainer.jit_compile=false", cwd=REPO,
                     env=SHELL_UNSET)
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.MlflowClient(server)
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FINISHED" and run.data.metrics["eval_top1"] > 0
    assert {"config.yaml", "architecture.md"} <= {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert list((tmp_path / "artifacts").rglob("config.yaml")), "artifacts went through the server to its store"
