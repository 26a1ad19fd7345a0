"""Every key of a composed config is one its schema declares.

Hydra's `+key=value` adds a key even to a node made from a dataclass (`+trainer.epoch=3` is then
accepted and ignored: 30 epochs run), so the composed config is checked against the dataclasses its
nodes were made from. Nodes of open types (`tracking.tags`, a model's block rows) take any key;
builders check a row's keys against its block's signature.
"""

import dataclasses

from omegaconf import DictConfig, OmegaConf

from runner.mistakes.errors import UserError
from runner.mistakes.suggestions import for_key


def check_known_keys(node: DictConfig, path: str = "") -> None:
    """Raise UserError naming the first key under `node` (at `path`) that its schema lacks."""
    schema = OmegaConf.get_type(node)
    declared = {field.name for field in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
    for key in node:
        key_path = f"{path}.{key}" if path else str(key)
        # A node made from a schema of its own was put there by a config (the bench's node, stored
        # in its own package), not typed on the command line.
        own_schema = dataclasses.is_dataclass(OmegaConf.get_type(node, key))
        if declared is not None and key not in declared and not own_schema:
            raise UserError(f"{key_path}: unknown key{for_key(key_path, declared)}")
        if own_schema and not OmegaConf.is_missing(node, key) and isinstance(node[key], DictConfig):
            check_known_keys(node[key], key_path)
