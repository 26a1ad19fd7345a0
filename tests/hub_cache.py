"""Published weights without a network: huggingface_hub's own cache, pre-filled as its client leaves it
after a download (models--<owner>--<name>/blobs/<sha256>, snapshots/<commit>/<file> linking to the
blob, refs/main naming the commit), so `model.weights=imagenet` runs its real download code offline
(HF_HUB_OFFLINE=1) and finds the file there, as it would on a machine that fetched it once."""

import hashlib
import os
import pathlib

import numpy as np
from safetensors.numpy import save_file

from runner.weights.download import HUB_FILE

COMMIT = "0123456789abcdef0123456789abcdef01234567"  # any 40 hex digits: the cache only names it


def prefill_hub(cache_home: pathlib.Path, repository: str, tensors: dict[str, np.ndarray]) -> dict[str, str]:
    """Writes `tensors` as `repository`'s model.safetensors into the hub cache runner.weights.download
    reads under XDG_CACHE_HOME=`cache_home`; returns the environment that makes the client offline."""
    folder = cache_home / "classic-cnns" / "weights" / "huggingface" / f"models--{repository.replace('/', '--')}"
    (folder / "blobs").mkdir(parents=True, exist_ok=True)
    staged = folder / "blobs" / "incoming"
    save_file(tensors, str(staged))
    blob = folder / "blobs" / hashlib.sha256(staged.read_bytes()).hexdigest()
    staged.replace(blob)
    snapshot = folder / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    (snapshot / HUB_FILE).unlink(missing_ok=True)
    os.symlink(os.path.relpath(blob, snapshot), snapshot / HUB_FILE)
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(COMMIT)
    return {"XDG_CACHE_HOME": str(cache_home), "HF_HUB_OFFLINE": "1"}
