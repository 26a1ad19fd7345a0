"""The bench's figures: six stages, their images per second, the ratios between them, and the
median of several rounds (runner/bench/measuring.py measures them; summary.py prints them)."""

import dataclasses
from typing import Optional

from runner.bench.inference_rows import Inference

STAGES = ("decode", "pipeline", "cached", "keras", "step", "peer", "fit")
INPUT_STAGES = ("decode", "pipeline", "cached", "keras")
NOT_ASKED = "not in bench.stages"  # the reason a stage bench.stages leaves out has no figure
FIGURES = {
    "decode": "decode_images_per_second",
    "pipeline": "train_pipeline_images_per_second",
    "cached": "cached_pipeline_images_per_second",
    "keras": "keras_baseline_images_per_second",
    "step": "step_images_per_second",
    "peer": "peer_step_images_per_second",
    "fit": "fit_images_per_second",
}
RATIOS = {  # name: (numerator stage, denominator stage)
    "pipeline_over_decode": ("pipeline", "decode"),
    "cached_over_decode": ("cached", "decode"),
    "pipeline_over_keras": ("pipeline", "keras"),
    "fit_over_step": ("fit", "step"),
    "step_over_peer": ("step", "peer"),
}
TARGETS = {"pipeline_over_decode": 0.8, "cached_over_decode": 3.0, "pipeline_over_keras": 2.0, "fit_over_step": 0.9,
           "step_over_peer": 1.0}
# In mixed precision the step is asked to reach 0.9 of PyTorch's under autocast; in float32, par.
MIXED_TARGETS = TARGETS | {"step_over_peer": 0.9}


@dataclasses.dataclass
class Stage:
    name: str
    images: int = 0
    seconds: float = 0.0
    reason: Optional[str] = None  # why there is no figure
    start_rss_mib: Optional[float] = None
    peak_rss_mib: Optional[float] = None

    @property
    def images_per_second(self) -> Optional[float]:
        if self.reason is not None or self.seconds <= 0:
            return None
        return self.images / self.seconds


@dataclasses.dataclass
class Bench:
    stages: dict[str, Stage]
    machine: dict
    settings: str  # what was measured, in one line
    precision: str = "float32"  # the step's dtype policy: the peer ratio's target depends on it
    inference: Optional[Inference] = None  # the infer stage's table, when bench.stages names it

    def figure(self, stage: str) -> Optional[float]:
        return self.stages[stage].images_per_second

    def targets(self) -> dict[str, float]:
        return MIXED_TARGETS if self.precision.startswith("mixed") else TARGETS

    def ratios(self) -> dict[str, Optional[float]]:
        result = {}
        for name, (top, bottom) in RATIOS.items():
            numerator, denominator = self.figure(top), self.figure(bottom)
            result[name] = numerator / denominator if numerator and denominator else None
        return result

    def as_json(self) -> dict:
        return {
            **{FIGURES[stage]: self.figure(stage) for stage in STAGES},
            "ratios": self.ratios(),
            "peak_rss_mib": {stage: self.stages[stage].peak_rss_mib for stage in STAGES},
            "machine": self.machine,
            **({"inference": self.inference.as_json()} if self.inference else {}),
        }


def median_round(rounds: list[Stage]) -> Stage:
    """The round with the median rate (the lower middle one of an even count), with the highest
    peak memory of them all; a stage without a figure in any round has none."""
    missing = [stage for stage in rounds if stage.reason is not None]
    if missing:
        return missing[0]
    chosen = sorted(rounds, key=lambda stage: stage.images_per_second)[(len(rounds) - 1) // 2]
    return dataclasses.replace(chosen, start_rss_mib=min(stage.start_rss_mib for stage in rounds),
                               peak_rss_mib=max(stage.peak_rss_mib for stage in rounds))
