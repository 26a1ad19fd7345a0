"""Wrong configs through the real CLI: one line naming the key, a non-zero exit, no traceback, no MLflow run.

And exposure: what a run records holds no secret from its environment, and the dashboard command binds
only to this machine.

The module runs every command once, in this process (tests/apps.py), and the tests read their results.
"""

import dataclasses
import enum
import os
import pathlib
import re
import typing
from typing import Optional
import uuid

import hydra
import mlflow
import pytest
import yaml

from apps import SHELL_UNSET, run_app
from helpers import CONF, REPO, compose
from runner.config import schema
from runner.config.bounds import check_bounds
from runner.mistakes.errors import UserError, reported_as_one_line
from runner.training.checks import check_trainer

# TensorFlow's start-up chatter on stderr, not part of what the runner says.
NOISE = re.compile(r"^(I0000|W0000|E0000|WARNING: All log messages|To enable the following instructions)")
ANSI_ESCAPE = "\x1b"
SECRET = f"s3cr3t-{uuid.uuid4().hex}"
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|API_KEY|ACCESS_KEY|PRIVATE", re.IGNORECASE)

# name: (overrides, the key the message must name, the runner's own error (it starts the line), else
# Hydra's composition error cut to one line)
CASES = {
    "unknown_model": (["model=nosuch"], "model/nosuch", False),
    "negative_filters": (["model.blocks.0.filters=-3"], "model.blocks[0].filters", True),
    "zero_batch_size": (["trainer.batch_size=0"], "trainer.batch_size", True),
    "epochs_not_a_number": (["trainer.epochs=many"], "trainer.epochs", False),
    "alexnet_collapses_at_32": (["model=alexnet", "model.input_shape=[32,32,3]"], "model.blocks[5]", True),
    "googlenet_aux_head_at_32": (["model=googlenet", "model.input_shape=[32,32,3]"], "model.blocks[11]", True),
    "unknown_key": (["trainer.batchsize=3"], "trainer.batchsize", False),
    "unknown_key_added": (["+trainer.batchsize=3"], "trainer.batchsize", True),
}
FULL_ERROR = "zero_batch_size_full_error"
TRAINED = "trained"
SMOKE_RUN = ["data=synthetic", "data.train_size=32", "data.val_size=16", "trainer.epochs=1",
             "trainer.batch_size=16", "trainer.steps_per_epoch=2", "trainer.jit_compile=false"]


@dataclasses.dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    store: str  # the tracking URI the command was given

    @property
    def said(self) -> list[str]:
        """Stderr without TensorFlow's start-up lines."""
        return [line for line in self.stderr.splitlines() if line.strip() and not NOISE.match(line)]


def environment(**extra: str) -> dict[str, Optional[str]]:
    """Whatever store or error mode the developer's shell sets must not leak into these commands."""
    return {**SHELL_UNSET, **extra}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, Result]:
    root = tmp_path_factory.mktemp("cli")
    commands = {name: (overrides, environment()) for name, (overrides, _, _) in CASES.items()}
    commands[FULL_ERROR] = (["trainer.batch_size=0"], environment(HYDRA_FULL_ERROR="1"))
    # A credential typed into a URI on the command line is recorded as ***@ everywhere.
    with_credential = [*SMOKE_RUN, f'+tracking.tags.source="https://someone:{SECRET}@example.com/data"']
    commands[TRAINED] = (with_credential, environment(RUNNER_TEST_SECRET=SECRET, MLFLOW_TRACKING_PASSWORD=SECRET))
    finished = {}
    for name, (overrides, env) in commands.items():
        folder = root / name
        folder.mkdir()
        store = f"sqlite:///{folder / 'mlflow.db'}"
        result = run_app("runner", *overrides, f"tracking.uri={store}", f"hydra.run.dir={folder / 'run'}", cwd=REPO,
                         env=env)
        finished[name] = Result(result.returncode, result.stdout, result.stderr, store)
    return finished


def runs_in(store: str) -> list:
    path = pathlib.Path(store.removeprefix("sqlite:///"))
    if not path.exists():
        return []
    client = mlflow.MlflowClient(store)
    return client.search_runs([experiment.experiment_id for experiment in client.search_experiments()])


@pytest.mark.e2e
@pytest.mark.parametrize("case", CASES)
def test_a_wrong_config_fails_before_any_run_with_one_line_naming_the_key(results, case):
    _, key, runners_own = CASES[case]
    result = results[case]
    assert result.returncode == 2
    assert not any(line.startswith("Traceback") for line in result.stderr.splitlines()), result.stderr
    assert ANSI_ESCAPE not in result.stderr
    assert len(result.said) == 1, result.said
    assert result.said[0].startswith(f"error: {key}" if runners_own else "error: "), result.said
    assert key in result.said[0]
    assert runs_in(result.store) == []


@pytest.mark.e2e
def test_the_messages_say_what_is_valid(results):
    assert results["negative_filters"].said == ["error: model.blocks[0].filters: expected a positive int, got -3"]
    assert results["zero_batch_size"].said == ["error: trainer.batch_size=0: expected a positive int"]
    assert results["unknown_key"].said == [
        ("error: Could not override 'trainer.batchsize': Key 'batchsize' not in 'TrainerConfig'; "
         "did you mean trainer.batch_size?")]
    assert results["unknown_key_added"].said == [
        "error: trainer.batchsize: unknown key; did you mean trainer.batch_size?"]
    assert results["epochs_not_a_number"].said == [
        ("error: Error merging override trainer.epochs=many: "
         "Value 'many' of type 'str' could not be converted to Integer")]


@pytest.mark.e2e
def test_hydra_full_error_shows_the_traceback(results):
    result = results[FULL_ERROR]
    assert result.returncode != 0
    assert any(line.startswith("Traceback") for line in result.stderr.splitlines())
    assert "trainer.batch_size=0: expected a positive int" in result.stderr
    assert runs_in(result.store) == []


@pytest.mark.e2e
def test_a_run_records_no_secret_from_its_environment(results, tmp_path):
    result = results[TRAINED]
    assert result.returncode == 0, result.stderr[-3000:]
    secrets = {value for name, value in os.environ.items() if SECRET_NAME.search(name) and len(value) > 8}
    secrets.add(SECRET)
    [run] = runs_in(result.store)
    client = mlflow.MlflowClient(result.store)
    artifacts = artifact_files(client, run.info.run_id, tmp_path)
    assert {"config.yaml", "architecture.md"} <= {path.name for path in artifacts}
    recorded = [*run.data.params, *run.data.params.values(), *run.data.tags.values()]
    recorded += [path.read_text(errors="replace") for path in artifacts]  # the figures too, as bytes decoded
    for secret in secrets:
        assert not any(secret in text for text in recorded), "a secret was recorded"
    assert run.data.tags["source"] == "https://***@example.com/data"
    # The dashboard command it prints binds to MLflow's default, 127.0.0.1, not to every interface.
    assert "mlflow ui --backend-store-uri" in result.stdout and "0.0.0.0" not in result.stdout


def artifact_files(client, run_id: str, into: pathlib.Path) -> list[pathlib.Path]:
    local = pathlib.Path(client.download_artifacts(run_id, "", str(into)))
    return [path for path in local.rglob("*") if path.is_file()]


def test_documented_dashboard_commands_stay_on_this_machine():
    """The README's and docs/'s mlflow ui and mlflow server commands bind to this machine only."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    commands = [(page.name, line) for page in pages for line in page.read_text().splitlines()
                if re.search(r"mlflow (ui|server)\b", line)]
    assert commands
    for name, line in commands:
        assert "0.0.0.0" not in line, f"{name} opens the dashboard to the network: {line}"


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.epochs=0", "trainer.epochs=0: train for at least 1 epoch"),
        ("trainer.batch_size=-8", "trainer.batch_size=-8: expected a positive int"),
        ("trainer.steps_per_execution=0", "trainer.steps_per_execution=0: expected a positive int"),
        ("trainer.steps_per_epoch=0", "trainer.steps_per_epoch=0: expected a positive int"),
        ("trainer.cpu_replicas=-1", "trainer.cpu_replicas=-1: expected an int >= 0"),
        ("trainer.seed=-1", "trainer.seed=-1: expected an int >= 0"),
        ("data.num_classes=0", "data.num_classes=0: a classifier needs at least 2 classes"),
        ("data.num_classes=1", "data.num_classes=1: a classifier needs at least 2 classes"),
        ("schedule.step_epochs=[10,0]", "schedule.step_epochs[1]=0: expected a positive int"),
    ],
)
def test_check_trainer_names_the_key(override, message):
    with pytest.raises(UserError) as raised:
        check_trainer(compose(override))
    assert str(raised.value) == message


@pytest.mark.parametrize(
    "override, message",
    [
        ("optimizer.name=lion", "optimizer.name: unknown optimizer 'lion'; valid: sgd, adam, adamw"),
        ("schedule.name=linear", "schedule.name: unknown schedule 'linear'; valid: constant, step, cosine, plateau"),
        ("augment.name=cutmix",
         "augment.name: unknown augmentation 'cutmix'; valid: crop_flip, crop, inception, scale_jitter, none"),
        ("data.name=cifar",
         "data.name: unknown dataset 'cifar'; valid: digits, imagenette, imagenet, folder, synthetic"),
        ("sweep.objective=eval_top1_10crop",
         "sweep.objective=eval_top1_10crop: expected eval.ten_crop=true, which logs it"),
        ("trainer.resume_run=abc123", "trainer.resume_run=abc123: expected trainer.resume=true (false starts afresh)"),
    ],
)
def test_check_trainer_refuses_names_no_table_holds_and_contradictions(override, message):
    with pytest.raises(UserError) as raised:
        check_trainer(compose(override, "trainer.resume=false"))
    assert str(raised.value) == message


GROUPS = ("data", "augment", "eval", "trainer", "optimizer", "schedule", "tracking", "hparams_search", "experiment")


@pytest.mark.parametrize("choice", [f"{group}={path.stem}" for group in GROUPS
                                    for path in sorted((CONF / group).glob("*.yaml"))])
def test_check_trainer_accepts_every_configured_choice(choice):
    check_trainer(compose(choice, "data.num_classes=3") if choice == "data=folder" else compose(choice))


def test_check_trainer_accepts_the_defaults_and_nulls():
    check_trainer(compose())
    check_trainer(compose("trainer.steps_per_epoch=null", "data=synthetic"))
    check_trainer(compose("eval=ten_crop", "sweep.objective=eval_top5_10crop", "sweep.direction=maximize"))
    check_trainer(compose("trainer.resume_run=abc123"))


def schema_defaults(group: str) -> dict:
    """The defaults of a group's schema dataclass as YAML writes them (an enum by its name)."""
    values = dataclasses.asdict(typing.get_type_hints(schema.Config)[group]())
    return {key: value.name if isinstance(value, enum.Enum) else value for key, value in values.items()}


@pytest.mark.parametrize("group", ["data", "augment", "eval", "trainer", "optimizer", "schedule", "tracking"])
def test_a_group_file_sets_only_what_its_choice_changes(group):
    """The schema holds every default: a value equal to the schema's repeats it, and would drift."""
    defaults = schema_defaults(group)
    for path in sorted((CONF / group).glob("*.yaml")):
        settings = yaml.safe_load(path.read_text()) or {}
        repeated = [key for key, value in settings.items() if key != "defaults" and defaults.get(key) == value]
        assert not repeated, f"conf/{group}/{path.name} repeats the schema's default of {repeated}"


@pytest.mark.parametrize(
    "app, override, message",
    [
        ("bench", "bench.rounds=0", "bench.rounds=0: expected a positive int"),
        ("bench", "bench.warmup_batches=-1", "bench.warmup_batches=-1: expected an int >= 0"),
        ("visualize", "visualize.top_k=0", "visualize.top_k=0: expected a positive int"),
    ],
)
def test_the_apps_bounds_are_the_schemas(app, override, message):
    with hydra.initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = hydra.compose(app, overrides=[override])
    node_type = {"bench": schema.BenchConfig, "visualize": schema.VisualizeConfig}[app]
    with pytest.raises(UserError) as raised:
        check_bounds(cfg[app], node_type, app)
    assert str(raised.value) == message


def test_the_bench_composes_the_runners_config_with_its_own_node_and_no_sweep_callback():
    with hydra.initialize_config_dir(str(CONF), version_base="1.3"):
        bench = hydra.compose("bench", overrides=["bench.rounds=1", "model=alexnet", "optimizer=adam"],
                              return_hydra_config=True)
        runner = hydra.compose("config", overrides=["model=alexnet", "optimizer=adam"])
    assert bench.bench.rounds == 1 and bench.bench.fit_steps == schema.BenchConfig.fit_steps
    assert {key: bench[key] for key in runner} == dict(runner)
    assert not bench.hydra.callbacks and bench.hydra.run.dir.startswith("outputs/bench/")


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_optunas_direction_is_the_sweeps(direction):
    from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl

    with hydra.initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = hydra.compose("config", overrides=["hparams_search=optuna", f"sweep.direction={direction}"],
                            return_hydra_config=True)
    sweeper = OptunaSweeperImpl(sampler=None, direction=cfg.hydra.sweeper.direction, storage=None, study_name="s",
                                n_trials=1, n_jobs=1, max_failure_rate=0.0, search_space=None,
                                custom_search_space=None, params=None)
    assert sweeper._get_directions() == [direction]


def test_one_line_errors_raise_with_hydra_full_error(monkeypatch, capsys):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as exited:
        with reported_as_one_line():
            raise UserError("trainer.batch_size=0: expected a positive int")
    assert exited.value.code == 2
    assert capsys.readouterr().err == "error: trainer.batch_size=0: expected a positive int\n"

    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(UserError, match="trainer.batch_size"):
        with reported_as_one_line():
            raise UserError("trainer.batch_size=0: expected a positive int")
