"""MLflow's model conventions: a run logged with tracking.log_model is served by `mlflow models serve`
on loopback and answers HTTP predictions; tracking.register_model puts it in the Model Registry."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import keras
import mlflow
import numpy as np
import pytest

from apps import run_app
from helpers import compose, new_store
from runner.data.splits import load

START_S = 120  # the server imports TensorFlow and loads the model before it answers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stderr.read()[-3000:]
        try:
            urllib.request.urlopen(f"{url}/ping", timeout=2)
            return
        except OSError:
            time.sleep(1)
    pytest.fail(f"mlflow models serve did not answer at {url} within {START_S} s")


@pytest.mark.e2e
def test_a_logged_run_is_served_over_http_and_registered(tmp_path):
    store = new_store(tmp_path)
    result = run_app("runner", f"hydra.run.dir={tmp_path}/run", "trainer.epochs=1", "tracking.log_model=true",
                     "tracking.register_model=lenet-digits", env={"MLFLOW_TRACKING_URI": store})
    assert result.returncode == 0, result.stderr[-2000:]
    client = mlflow.MlflowClient(store)
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    [version] = client.search_model_versions("name='lenet-digits'")
    assert version.run_id == run.info.run_id

    images, labels = next(load(compose("trainer.batch_size=16")).val.as_numpy_iterator())
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"runs:/{run.info.run_id}/model",
         "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "MLFLOW_TRACKING_URI": store}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, server)
        # Raw uint8 pixels, as JSON: the served model normalises them itself.
        request = urllib.request.Request(f"{url}/invocations", data=json.dumps({"inputs": images.tolist()}).encode(),
                                         headers={"Content-Type": "application/json"})
        served = np.array(json.loads(urllib.request.urlopen(request, timeout=60).read())["predictions"])
    finally:
        server.terminate()
        server.wait(timeout=30)
    local = keras.saving.load_model(tmp_path / "run" / "model.keras").predict(images, verbose=0)
    np.testing.assert_allclose(served, local, rtol=1e-4, atol=1e-6)  # the run's own model, probabilities out
    assert np.mean(served.argmax(axis=1) == labels) >= 0.5  # one epoch of LeNet: well above chance (0.1)
