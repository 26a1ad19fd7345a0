"""A user's mistakes as a user makes them, each ending in one line with what would be valid, and a
start-up without TensorFlow's C++ chatter.

The broken YAML files live in a config dir of the test's own (`--config-dir`), never in conf/.
Composition errors need no training: most run the app in this process (tests/apps.py); the ones
about how a process starts (its imports, its stderr) run one.
"""

import os
import subprocess
import sys

import hydra
import pytest
import tensorflow as tf
from apps import SHELL_UNSET, run_app
from helpers import CONF, REPO, compose

from runner.mistakes.errors import UserError
from runner.mistakes.known_keys import check_known_keys
from runner.shell import gpu_notice
from runner.shell.logs import lines_to_show

BROKEN_YAML = "name: broken\ninput_shape: [32, 32, 3\nblocks:\n  - {type: conv}\n"
TF_START_UP = ("cuInit", "E0000", "I0000", "W0000", "absl::InitializeLog", "oneDNN")


def config_dir(tmp_path, name: str, text: str) -> str:
    """A config dir holding one model file, model/<name>.yaml, beside the repository's conf/."""
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / f"{name}.yaml").write_text(text)
    return str(tmp_path / "conf")


def run_runner(tmp_path, *overrides: str, **env: str):
    """`python -m runner` here, recording into a store under tmp_path that must stay absent."""
    return run_app("runner", *overrides, f"hydra.run.dir={tmp_path / 'run'}",
                   f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", cwd=REPO, env={**SHELL_UNSET, **env})


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_yaml_syntax_error_names_the_file_line_and_column(tmp_path):
    conf = config_dir(tmp_path, "broken", BROKEN_YAML)
    result = run_runner(tmp_path, "--config-dir", conf, "model=broken")
    assert one_line(result) == (f"error: {conf}/model/broken.yaml:3:7: expected ',' or ']', but got ':' "
                                "(while parsing a flow sequence, from line 2)")
    assert not (tmp_path / "mlflow.db").exists()


def test_an_unknown_yaml_tag_is_one_line_and_nothing_runs(tmp_path):
    executed = tmp_path / "executed"
    conf = config_dir(tmp_path, "evil", f'name: !!python/object/apply:os.system ["touch {executed}"]\n')
    result = run_runner(tmp_path, "--config-dir", conf, "model=evil")
    assert one_line(result) == (f"error: {conf}/model/evil.yaml:1:7: unknown YAML tag !!python/object/apply:os.system; "
                                "config files hold plain values, remove the tag")
    assert not executed.exists()


# Nine levels of ten aliases: a billion values once copied out, from 600 bytes.
ALIAS_BOMB = "name: bomb\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 10)}]\n" for level in range(1, 10)) + "blocks: *a9\n"


@pytest.mark.parametrize("text", [ALIAS_BOMB, "name: loop\nblocks: &b [*b]\n"], ids=["nested", "recursive"])
def test_aliases_that_expand_past_the_bound_are_refused_before_they_expand(tmp_path, text):
    conf = config_dir(tmp_path, "bomb", text)
    result = run_runner(tmp_path, "--config-dir", conf, "model=bomb")
    assert one_line(result) == (f"error: {conf}/model/bomb.yaml:1:1: its aliases expand to more than 100,000 values "
                                "(each alias repeats all its anchor holds); write the values out, or use fewer "
                                "nested aliases")


def test_aliases_within_the_bound_compose_as_written(tmp_path):
    conf = config_dir(tmp_path, "tiny", "name: tiny\ninput_shape: [8, 8, 1]\n"
                                        "blocks: [{type: flatten}, &row {type: dense, units: 4}, *row]\n")
    result = run_app("runner.describe", "--config-dir", conf, "model=tiny", f"hydra.run.dir={tmp_path / 'run'}",
                     cwd=REPO, env=SHELL_UNSET)
    assert result.returncode == 0, result.stderr
    assert sum("dense" in line for line in result.stdout.splitlines()) == 2  # the alias is a row of its own


def test_an_unknown_key_in_a_config_file_is_named_with_its_file(tmp_path):
    lenet = (CONF / "model" / "lenet.yaml").read_text()
    conf = config_dir(tmp_path, "mine", lenet.replace("name: lenet", "name: mine\nblocs: []", 1))
    assert one_line(run_runner(tmp_path, "--config-dir", conf, "model=mine")) == (
        "error: model.blocs: unknown key (in model/mine.yaml); did you mean model.blocks?")


def test_hydra_full_error_keeps_the_traceback_of_a_yaml_error(tmp_path):
    conf = config_dir(tmp_path, "broken", BROKEN_YAML)
    result = run_runner(tmp_path, "--config-dir", conf, "model=broken", HYDRA_FULL_ERROR="1")
    assert result.returncode == 1 and "Traceback" in result.stderr
    assert "yaml.parser.ParserError" in result.stderr


@pytest.mark.parametrize("override, line", [
    ("+trainer.epoch=3", "error: trainer.epoch: unknown key; did you mean trainer.epochs?"),
    ("trainer.epoch=3",
     "error: Could not override 'trainer.epoch': Key 'epoch' not in 'TrainerConfig'; did you mean trainer.epochs?"),
    ("+shedule.name=step", "error: shedule: unknown key; did you mean schedule?"),
    ("data.num_classes=1", "error: data.num_classes=1: a classifier needs at least 2 classes"),
])
def test_a_mistaken_key_or_value_is_refused_in_one_line_before_any_run(tmp_path, override, line):
    result = run_runner(tmp_path, override)
    assert one_line(result) == line
    assert not (tmp_path / "mlflow.db").exists()


def test_a_misspelt_config_name_gets_the_closest_and_every_option(tmp_path):
    said = one_line(run_runner(tmp_path, "model=resnet51"))
    assert said.startswith("error: In 'config': Could not find 'model/resnet51'; did you mean model=resnet50? "
                           "(options in model: alexnet, ")
    assert "resnet18, resnet34, resnet50, vgg11" in said


def test_a_multirun_whose_command_does_not_compose_says_so_once(tmp_path):
    result = run_app("runner.describe", "-m", "model=lenet,resnet51", f"hydra.sweep.dir={tmp_path}", cwd=REPO,
                     env=SHELL_UNSET)
    assert one_line(result).startswith("error: In 'config': Could not find 'model/resnet51'; did you mean")
    assert not list(tmp_path.glob("*/"))  # no job ran, not even lenet's


def test_open_nodes_and_the_bench_node_take_their_keys():
    check_known_keys(compose("+tracking.tags.study=x", "+model.blocks.0.note=first"))
    with hydra.initialize_config_dir(str(CONF), version_base="1.3"):
        check_known_keys(hydra.compose("bench"))
        with pytest.raises(UserError, match=r"^bench.round: unknown key; did you mean bench.rounds\?$"):
            check_known_keys(hydra.compose("bench", overrides=["+bench.round=1"]))
    with pytest.raises(UserError, match=r"^model.weight: unknown key; did you mean model.weights\?$"):
        check_known_keys(compose("+model.weight=imagenet"))
    with pytest.raises(UserError, match=r"^trainer.zzz: unknown key; valid keys of trainer: batch_size, "):
        check_known_keys(compose("+trainer.zzz=1"))


@pytest.mark.e2e
def test_a_config_error_needs_no_tensorflow(tmp_path):
    """The mistakes above are found before the command imports TensorFlow (seconds)."""
    script = ("import runpy, sys\nsys.argv = ['runner', '+trainer.epoch=3', 'hydra.run.dir=run']\n"
              "try:\n    runpy.run_module('runner', run_name='__main__')\nexcept SystemExit as stop:\n"
              "    print(stop.code, 'tensorflow' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], check=False, cwd=tmp_path, env=clean_environment(),
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["2", "False"], result.stderr
    assert result.stderr == "error: trainer.epoch: unknown key; did you mean trainer.epochs?\n"


def clean_environment(**extra: str) -> dict:
    """This process's environment without a level or error mode the developer's shell may set."""
    unset = {"TF_CPP_MIN_LOG_LEVEL", "HYDRA_FULL_ERROR", "MLFLOW_TRACKING_URI"}
    return {**{key: value for key, value in os.environ.items() if key not in unset},
            "PYTHONPATH": str(REPO), **extra}


@pytest.mark.e2e
def test_a_command_starts_without_tensorflows_cpp_lines(tmp_path):
    result = subprocess.run([sys.executable, "-m", "runner.describe", "model=lenet", "hydra.run.dir=run"], check=False,
                            cwd=tmp_path, env=clean_environment(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "c1       conv" in result.stdout
    assert result.stderr == ""


IMPORT_THEN_FAIL = ("import runner\nfrom runner.shell.logs import import_tensorflow_quietly\n"
                    "import_tensorflow_quietly()\n"
                    "import tensorflow as tf\ntf.config.list_physical_devices('GPU')\n"
                    "tf.io.decode_image(b'not an image')\n")


@pytest.mark.e2e
def test_tensorflows_errors_still_raise_as_python_exceptions(tmp_path):
    result = subprocess.run([sys.executable, "-c", IMPORT_THEN_FAIL], check=False, cwd=tmp_path,
                            env=clean_environment(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "tensorflow.python.framework.errors_impl.InvalidArgumentError" in result.stderr
    assert [line for line in result.stderr.splitlines() if any(noise in line for noise in TF_START_UP)] == []


# What TensorFlow 2.21 writes while it loads, before it reads TF_CPP_MIN_LOG_LEVEL.
LOADING = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
           "I0000 00:00:1796143297.200723   12425 cudart_stub.cc:31] Could not find cuda drivers on your machine\n"
           "E0000 00:00:1796143302.042413   12425 cuda_platform.cc:52] failed call to cuInit\n"
           "a line of someone else's\n")


@pytest.mark.parametrize("level, kept", [(3, [3]), (2, [2, 3]), (1, [0, 2, 3]), (0, [0, 1, 2, 3])])
def test_the_lines_written_while_tensorflow_loads_follow_the_level(level, kept):
    lines = LOADING.splitlines(keepends=True)
    assert lines_to_show(LOADING, level) == [lines[index] for index in kept]


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="the notice is for machines without one")
def test_a_machine_without_a_gpu_says_so_once_when_a_config_asks_for_one(monkeypatch, capsys):
    monkeypatch.setattr(gpu_notice, "_said", [])
    gpu_notice.say_when_no_gpu(compose().trainer)  # auto asks for nothing
    gpu_notice.say_when_no_gpu(compose("trainer.strategy=mirrored", "trainer.cpu_replicas=2").trainer)
    assert capsys.readouterr().err == ""
    asking = compose("trainer.strategy=mirrored", "trainer.precision=mixed_float16").trainer
    gpu_notice.say_when_no_gpu(asking)
    gpu_notice.say_when_no_gpu(asking)
    assert capsys.readouterr().err.splitlines() == [
        ("note: this machine has no GPU that TensorFlow can use (asked for by trainer.strategy=mirrored and "
         "trainer.precision=mixed_float16); the run uses the CPU")]
