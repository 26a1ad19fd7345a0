"""MLflow's dashboard in a real browser: every address the commands print opens on the training view
(the runs), not on MLflow 3's GenAI pages, in a browser that has never chosen a view (a fresh profile,
whose local storage holds no "GenAI / Model training" choice: GenAI, the UI's default)."""

import html.parser
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import mlflow
import pytest

from helpers import compose, new_store, server_environment
from runner.tracking.dashboard import UI_ADDRESS, how_to_open
from runner.tracking.run import Run
from test_tracking_server import answers, free_port

CHROMIUM = shutil.which("chromium")
pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")]

START_S = 180  # `mlflow ui` imports MLflow's server and checks the store's tables: 20 s on a busy 2-core machine
# Milliseconds of page time chromium grants the UI before it prints the DOM; virtual time runs ahead of the
# clock while the page waits on nothing, so a page that renders in 1 s costs about that.
PAGE_BUDGET_MS = 15000
# Text only the GenAI view shows: its sidebar group, and the trace overview's button. The training view's
# sidebar instead links the model registry, which the GenAI view hides.
GENAI_MARKS = ("Observability", "Detect Issues")
TRAINING_MARK = "Model registry"


class PageText(html.parser.HTMLParser):
    """What a reader sees of an HTML page: its text without scripts and styles, spaces collapsed."""

    def __init__(self, page: str):
        super().__init__()
        self._skipping = False
        self._parts: list[str] = []
        self.feed(page)
        self.text = " ".join(" ".join(self._parts).split())

    def handle_starttag(self, tag, attrs):
        self._skipping = tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skipping = False

    def handle_data(self, data):
        if not self._skipping:
            self._parts.append(data)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A run recorded by the project's own tracking code, the printed line that shows it, and its names."""
    store = new_store(tmp_path_factory.mktemp("store"))
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)  # it would outrank tracking.uri
        with Run(compose(f"tracking.uri={store}")) as run:
            run.log_epoch(0, {"loss": 1.5, "val_top1": 0.25})
    info = mlflow.MlflowClient(store).get_run(run.run_id).info
    return {"store": store, "printed": run.ui_command(), "name": info.run_name, "experiment": info.experiment_id}


@pytest.fixture(scope="module")
def dashboard(finished_run, tmp_path_factory):
    """The `mlflow ui` command a run prints, started as printed on a free port; yields its address."""
    command = shlex.split(finished_run["printed"].splitlines()[0])
    assert command[:2] == ["mlflow", "ui"], finished_run["printed"]
    port = free_port()
    log = tmp_path_factory.mktemp("ui") / "ui.log"
    with open(log, "w") as output:  # a file, not a pipe: nothing reads it while the dashboard runs
        process = subprocess.Popen([sys.executable, "-m", "mlflow", *command[1:], "--port", str(port),
                                    "--workers", "1"],
                                   stdout=output, stderr=output, env=server_environment(),
                                   start_new_session=True)  # its own group: it serves from uvicorn children
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while not answers(url):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"mlflow ui did not answer within {START_S} s"
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the CLI and uvicorn at once
        process.wait(timeout=30)


def opened(printed: str, dashboard: str, tmp_path) -> str:
    """The text a fresh browser shows at the address in a printed `mlflow ui` line, served by `dashboard`."""
    address = printed.split("then open ", 1)[1].strip()
    assert address.startswith(UI_ADDRESS), printed
    page = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
         f"--virtual-time-budget={PAGE_BUDGET_MS}", "--dump-dom", dashboard + address.removeprefix(UI_ADDRESS)],
        capture_output=True, text=True, timeout=120)
    assert page.returncode == 0, page.stderr[-2000:]
    return PageText(page.stdout).text


def assert_training_view(text: str, run_name: str) -> None:
    shown = [mark for mark in GENAI_MARKS if mark in text]
    assert not shown, f"the GenAI view ({shown}): {text[:600]}"
    assert TRAINING_MARK in text, f"not the training view: {text[:600]}"
    assert run_name in text, f"the run is not on the page: {text[:600]}"


def test_a_runs_printed_page_opens_on_the_run_in_the_training_view(finished_run, dashboard, tmp_path):
    # What training, evaluate and bench print at their end.
    assert_training_view(opened(finished_run["printed"], dashboard, tmp_path), finished_run["name"])


def test_the_experiment_page_a_sweep_prints_opens_on_its_runs_table(finished_run, dashboard, tmp_path):
    # What a sweep prints when it starts (runner/sweep.py): the runs, where its jobs appear. Only the
    # runs table names the run: the GenAI overview lists traces.
    printed = how_to_open(finished_run["store"], finished_run["experiment"])
    text = opened(printed, dashboard, tmp_path)
    assert_training_view(text, finished_run["name"])
    assert text.startswith("Runs - "), text[:200]  # the page's title: the Runs tab, not Overview
