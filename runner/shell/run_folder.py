"""A run folder holding only what Hydra wrote into it records nothing, and goes.

Hydra makes hydra.run.dir before a command's body runs, and writes into it .hydra/ (config.yaml,
hydra.yaml, overrides.yaml) and the job's log. A command that writes nothing there (describe to the
terminal, evaluate, a command that failed) would leave one such folder per call under outputs/runs/.
Such a folder is Hydra's alone when it holds nothing but .hydra/ with those three files and an empty
`<job name>.log`: it goes after the command, with the folders above it that it leaves empty, up to
outputs/. Anything else in it (a file, a folder, a line of log) keeps it, and so does being outside the
project's outputs/ (a hydra.run.dir the user chose).
"""

import pathlib
import shutil

HYDRA_FILES = frozenset({"config.yaml", "hydra.yaml", "overrides.yaml"})


def remove_if_hydras_alone(run_dir: pathlib.Path, log_name: str, outputs: pathlib.Path) -> None:
    """Remove `run_dir` if it lies under `outputs` and holds only Hydra's files."""
    run_dir, outputs = run_dir.resolve(), outputs.resolve()
    if run_dir == outputs or not run_dir.is_relative_to(outputs) or not _hydras_alone(run_dir, log_name):
        return
    shutil.rmtree(run_dir)
    for folder in run_dir.parents:  # the date's folder and runs/, when this run was their last
        if folder == outputs:
            return
        try:
            folder.rmdir()
        except OSError:  # not empty: other runs' folders
            return


def _hydras_alone(run_dir: pathlib.Path, log_name: str) -> bool:
    if not run_dir.is_dir():
        return False
    entries = {entry.name: entry for entry in run_dir.iterdir()}
    if not set(entries) <= {".hydra", log_name}:
        return False
    hydra_files, log = entries.get(".hydra"), entries.get(log_name)
    return ((hydra_files is None or _only_hydras_files(hydra_files))
            and (log is None or (log.is_file() and log.stat().st_size == 0)))


def _only_hydras_files(folder: pathlib.Path) -> bool:
    return (folder.is_dir() and not folder.is_symlink()
            and all(entry.name in HYDRA_FILES and entry.is_file() for entry in folder.iterdir()))
