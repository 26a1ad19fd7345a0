"""Dataclass schemas for every config group, registered in Hydra's ConfigStore.

The YAML files under conf/ are merged into these, so a misspelt key or a wrong type fails when
the config is composed, with the key's full path in the message.
"""

import dataclasses
import enum
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclasses.dataclass
class ModelConfig:
    name: str = MISSING
    input_shape: list[int] = MISSING  # height, width, channels
    blocks: list[Any] = MISSING  # rows of the block vocabulary; checked by builders
    aux_loss_weight: float = 0.0  # weight of side-output losses; 0 removes side outputs


@dataclasses.dataclass
class DataConfig:
    name: str = MISSING
    num_classes: int = MISSING
    root: Optional[str] = None  # where the dataset lives on disk


class ReportFormat(enum.Enum):
    table = "table"
    markdown = "markdown"
    json = "json"


@dataclasses.dataclass
class DescribeConfig:
    format: ReportFormat = ReportFormat.table
    output: Optional[str] = None  # write the report here instead of printing it


@dataclasses.dataclass
class Config:
    model: ModelConfig = MISSING
    data: DataConfig = MISSING
    describe: DescribeConfig = dataclasses.field(default_factory=DescribeConfig)


def register() -> None:
    ConfigStore.instance().store(name="schema", node=Config)
