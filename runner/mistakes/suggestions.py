""""Did you mean ...?" for a misspelt name, from the names that exist (a schema's fields, a config
group's options)."""

import difflib
from collections.abc import Iterable

# difflib's default: "resnet51" finds resnet50 and "epoch" finds epochs, "foo" finds nothing.
CUTOFF = 0.6


def did_you_mean(name: str, candidates: Iterable[str], prefix: str = "") -> str:
    """"; did you mean <prefix><closest>?" when a candidate is close to `name`, else ""."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=CUTOFF)
    return f"; did you mean {prefix}{close[0]}?" if close else ""


def for_key(key_path: str, declared: Iterable[str]) -> str:
    """What to say after an unknown `key_path` (trainer.epoch) among its node's `declared` keys: the
    closest one, else all of them."""
    parent, _, key = key_path.rpartition(".")
    declared = sorted(declared)
    suggestion = did_you_mean(key, declared, f"{parent}." if parent else "")
    return suggestion or f"; valid keys{' of ' + parent if parent else ''}: {', '.join(declared)}"
