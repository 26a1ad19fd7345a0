"""The house (docs/architecture.md, "The layout") as checks on the source: arrows point one way, downwards, and no
two modules import each other. Imports are read from the code (function-level ones included), not
from a running process."""

import ast
import pathlib
import subprocess
import sys

import pytest

from helpers import REPO

# Each package's floor; a module may import only from its own floor or below. The apps (the
# commands, their shell and the sweep's callback) sit on top of the run's library (its set-up, the
# session, and the training loop), which sits on data, tracking, weights and the architecture's report,
# which sit on the config, the mistakes as one line, the shared modules at the top of runner, and builders.
FLOORS = {
    "builders": 0,
    "runner": 1, "runner.config": 1, "runner.mistakes": 1,
    "runner.data": 2, "runner.tracking": 2, "runner.weights": 2, "runner.architecture": 2,
    "runner.session": 3, "runner.training": 3,
    "runner.__main__": 4, "runner.shell": 4, "runner.sweep": 4, "runner.cluster": 4, "runner.bench": 4,
    "runner.compare": 4, "runner.describe": 4, "runner.visualize": 4, "runner.evaluate": 4, "runner.predict": 4,
    "runner.export": 4,
}
MAX_LINES = 300
MAX_LINE_LENGTH = 120


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for package in ("builders", "runner") for path in (REPO / package).rglob("*.py")}


def imported(name: str) -> set[str]:
    """The project's modules that module `name` imports, anywhere in its code."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            # `from runner.training import loop` imports runner.training.loop.
            found |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
    return {module for module in found if module in MODULES}


def floor(name: str) -> int:
    while name not in FLOORS:
        name = name.rsplit(".", 1)[0]
    return FLOORS[name]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_goes_up_a_floor(name):
    above = sorted(module for module in imported(name) if floor(module) > floor(name))
    assert not above, f"{name} (floor {floor(name)}) imports {above} from above it"


@pytest.mark.parametrize("name", sorted(name for name in MODULES if name.startswith("builders")))
def test_builders_import_only_keras_and_the_standard_library(name):
    tree = ast.parse(MODULES[name].read_text())
    roots = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    roots |= {node.module.split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    foreign = roots - {"keras", "builders", "__future__"} - set(sys.stdlib_module_names)
    assert not foreign, f"{name} imports {sorted(foreign)}"


def test_no_two_modules_import_each_other_directly_or_through_others():
    graph = {name: imported(name) - {name} for name in MODULES}
    # A package's __init__ counts as imported by its modules (Python runs it first), so leave those
    # edges out: an __init__ that imported its own modules would show as a cycle through them.
    graph = {name: {module for module in targets if not name.startswith(module + ".")}
             for name, targets in graph.items()}
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            assert state.get(target) != "open", "import cycle: " + " -> ".join(path[path.index(target):] + [target])
            if target not in state:
                visit(target, path + [target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_source_files_stay_small(name):
    lines = MODULES[name].read_text().count("\n")
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(REPO)} has {lines} lines"


def test_no_line_is_longer_than_the_house_allows():
    files = sorted(path for folder in ("builders", "runner", "tests") for path in (REPO / folder).rglob("*.py"))
    long = [f"{path.relative_to(REPO)}:{number}" for path in files
            for number, line in enumerate(path.read_text().splitlines(), start=1) if len(line) > MAX_LINE_LENGTH]
    assert not long, f"lines over {MAX_LINE_LENGTH} characters: {', '.join(long)}"


def test_no_logic_in_package_inits():
    """An __init__.py holds a docstring, and at most the set-up every module of its package needs."""
    heavy = [name for name in MODULES if MODULES[name].name == "__init__.py"
             and any(isinstance(node, (ast.FunctionDef, ast.ClassDef))
                     for node in ast.parse(MODULES[name].read_text()).body)]
    assert not heavy, f"logic in {heavy}"


@pytest.mark.e2e
def test_importing_any_module_leaves_tensorflow_unstarted():
    """Devices are configured after the imports (trainer.cpu_replicas, multi_worker's collectives), which
    TensorFlow refuses once its runtime has started: a module-level tf.constant would start it."""
    modules = sorted(".".join(path.relative_to(REPO).with_suffix("").parts) for path in (REPO / "runner").rglob("*.py")
                     if path.name != "__main__.py")
    script = ("import importlib, sys, tensorflow as tf\n"
              f"for name in {modules!r}: importlib.import_module(name)\n"
              "cpu = tf.config.list_physical_devices('CPU')[0]\n"
              "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
