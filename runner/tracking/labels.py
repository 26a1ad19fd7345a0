"""What a run is called and what it records about itself: its name, tags and the config as params."""

import collections
import datetime
import pathlib
import subprocess
import sys
from typing import Any, Iterator, Optional

from hydra.core.hydra_config import HydraConfig
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
from omegaconf import DictConfig, OmegaConf

from runner.tracking.redact import redacted
from runner.tracking.sweep_parent import parent_run_id

REPO = pathlib.Path(__file__).resolve().parents[2]
# A run that holds no model says what it is in this tag; a training run carries none.
ROLE_TAG = "runner.role"
SWEEP_ROLE = "sweep"  # a sweep's parent (runner/sweep.py)
EVALUATE_ROLE = "evaluate"  # weights scored as they are (runner.evaluate)
BENCH_ROLE = "bench"  # a benchmark (runner.bench)
VISUALIZE_ROLE = "visualize"  # weights' figures (runner.visualize)


def run_name(cfg: DictConfig) -> str:
    if parent_run_id():  # parallel jobs start in the same second; the job number tells them apart
        return f"{cfg.model.name}-{cfg.data.name}-job{HydraConfig.get().job.num}"
    return f"{cfg.model.name}-{cfg.data.name}-{datetime.datetime.now():%Y%m%d-%H%M%S}"


def run_tags(cfg: DictConfig) -> dict[str, str]:
    tags = {"model": cfg.model.name, "data": cfg.data.name, "command": " ".join(sys.argv)}
    commit = _git_commit()
    if commit:
        tags["git_commit"] = commit
    tags |= _hydra_tags() | {str(key): str(value) for key, value in cfg.tracking.tags.items()}
    return {key: redacted(value) for key, value in tags.items()}


def parent_tag() -> dict[str, str]:
    parent = parent_run_id()
    return {MLFLOW_PARENT_RUN_ID: parent} if parent else {}


def _git_commit() -> Optional[str]:
    try:
        result = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None  # no git installed, or it hangs
    return result.stdout.strip() if result.returncode == 0 else None


def _hydra_tags() -> dict[str, str]:
    """Where Hydra put the job and which overrides made it; nothing when Hydra is not running the app."""
    if not HydraConfig.initialized():
        return {}
    hydra_cfg = HydraConfig.get()
    tags = {
        "hydra.overrides": " ".join(hydra_cfg.overrides.task),
        "hydra.output_dir": OmegaConf.select(hydra_cfg, "runtime.output_dir", default=None),
        "hydra.job_num": OmegaConf.select(hydra_cfg, "job.num", default=None),
    }
    return {key: str(value) for key, value in tags.items() if value is not None}


def config_params(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config flattened with dots; the block list becomes one summary param."""
    resolved = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    resolved["model"]["blocks"] = _blocks_summary(resolved["model"]["blocks"], resolved["model"].get("without") or [])
    return dict(_flatten(resolved))


def _blocks_summary(blocks: list[dict], left_out: list[str]) -> str:
    """Applied blocks per type, in order, e.g. '1 conv, 1 maxpool, 16 bottleneck, 1 global_avgpool, 1 dense';
    without the types model.without leaves out."""
    counts = collections.Counter()
    for row in blocks:
        if row["type"] not in left_out:
            counts[row["type"]] += row.get("repeat", 1)
    return ", ".join(f"{count} {block_type}" for block_type, count in counts.items())


def _flatten(node: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def param_value(value: Any) -> str:
    text = redacted(str(value))
    if len(text) <= MAX_PARAM_VAL_LENGTH:
        return text
    return text[: MAX_PARAM_VAL_LENGTH - 3] + "..."
