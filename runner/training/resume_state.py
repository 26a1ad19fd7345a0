"""A resume point's `state.json`: written whole through a rename, and read back only if it is what
ResumePoint.save wrote. Anything else (cut short, not text, other keys) is a one-line UserError
that names the folder and both ways out, since no rerun could ever get past it."""

import json
import pathlib

from runner import disk
from runner.mistakes.errors import UserError

STATE_FILE = "state.json"
# What state.json holds, as ResumePoint.save writes it; the first four are always there.
STATE_TYPES = {"run_id": (str, type(None)), "epoch": int, "history": dict, "checkpoint": (str, type(None)),
               "run_dir": (str, type(None)), "counters": list, "stopped": bool}
REQUIRED = ("run_id", "epoch", "history", "checkpoint")


def load(directory: pathlib.Path) -> dict | None:
    """The state saved in `directory`, None if there is none."""
    try:
        state = json.loads((directory / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:  # ValueError: not UTF-8 (UnicodeDecodeError), not JSON
        raise unreadable(directory, _why(error)) from None
    problem = _malformed(state)
    if problem:
        raise unreadable(directory, problem)
    return state


def write(directory: pathlib.Path, text: str) -> None:
    with disk.written_whole(directory / STATE_FILE) as partial:  # a kill or a full disk leaves the last whole one
        partial.write_text(text)


def unreadable(directory: pathlib.Path, why: str) -> UserError:
    return UserError(f"the resume point in {directory} cannot be read ({why}); delete {directory / STATE_FILE} "
                     "to start this config afresh, or add trainer.resume=false")


def _why(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"{STATE_FILE} is not text"
    if isinstance(error, json.JSONDecodeError):
        return f"{STATE_FILE} is not JSON: {error.msg} at line {error.lineno} column {error.colno}"
    return f"{STATE_FILE}: {getattr(error, 'strerror', None) or error}"


def _malformed(state) -> str | None:
    """What keeps `state` from being a state ResumePoint.save wrote; None if nothing."""
    if not isinstance(state, dict):
        return f"{STATE_FILE} holds a JSON {type(state).__name__}, not the resume point's object"
    unknown = sorted(set(state) - set(STATE_TYPES))
    missing = [key for key in REQUIRED if key not in state]
    wrong = [key for key, value in state.items() if key in STATE_TYPES and not _fits(value, STATE_TYPES[key])]
    problems = [f"{what} {', '.join(keys)}" for what, keys in
                (("unknown keys", unknown), ("missing keys", missing), ("wrong types of", wrong)) if keys]
    if not problems and not all(isinstance(values, list) for values in state["history"].values()):
        problems = ["a history that is not lists"]
    return f"{STATE_FILE} has {'; '.join(problems)}" if problems else None


def _fits(value, types) -> bool:
    return isinstance(value, types) and not (isinstance(value, bool) and types is int)
