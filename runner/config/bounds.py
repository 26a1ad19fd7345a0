"""What a config value may be, checked before anything is built: the bounds the schema's fields carry
(`at_least`, which runner/config/schema.py uses), and the names of a closed choice, looked up in the one table that
also dispatches them (`Choices`).

The schema already rejects a wrong type (`trainer.epochs=many`) when the config is composed; these
are values of the right type that TensorFlow would only reject later, with a traceback from deep
inside tf.data or Keras (`trainer.batch_size=0` fails in BatchDatasetV2).
"""

import dataclasses
import typing
from typing import Any, Mapping, Optional

from omegaconf import DictConfig, ListConfig, OmegaConf

from runner.mistakes.errors import UserError


def at_least(minimum: int, default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
             says: Optional[str] = None) -> Any:
    """A field whose value (each item, for a list) must be at least `minimum`; a null passes (unset).
    `says` replaces the message's "expected a positive int"."""
    metadata = {"min": minimum, **({"says": says} if says else {})}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def check_bounds(node: DictConfig, schema: type, path: str = "") -> None:
    """Raise UserError for the first field of `node` (at `path`, e.g. "bench") below its bound in
    `schema`, the dataclass it was composed from, nested dataclasses included."""
    hints = typing.get_type_hints(schema)
    for field in dataclasses.fields(schema):
        key = f"{path}.{field.name}" if path else field.name
        if field.name not in node or OmegaConf.is_missing(node, field.name):
            continue  # ??? (data.num_classes of data=folder) fails where it is read, naming itself
        value = node[field.name]
        if dataclasses.is_dataclass(hints[field.name]) and isinstance(value, DictConfig):
            check_bounds(value, hints[field.name], key)
        elif "min" in field.metadata:
            items = enumerate(value) if isinstance(value, ListConfig) else [(None, value)]
            for index, item in items:
                _check_at_least(key if index is None else f"{key}[{index}]", item, field.metadata)


def _check_at_least(key: str, value: Any, metadata: Mapping[str, Any]) -> None:
    minimum = metadata["min"]
    if value is None or value >= minimum:
        return
    expected = "expected a positive int" if minimum == 1 else f"expected an int >= {minimum}"
    raise UserError(f"{key}={value}: {metadata.get('says', expected)}")


class Choices(dict):
    """A closed choice's table, {name: what it dispatches to}: `of(name)` is the one lookup, and a
    wrong name fails naming the key and every valid name."""

    def __init__(self, key: str, noun: str, table: Mapping[str, Any]):
        super().__init__(table)
        self.key, self.noun = key, noun  # "optimizer.name", "optimizer"

    def of(self, name: str) -> Any:
        if name not in self:
            raise UserError(f"{self.key}: unknown {self.noun} {name!r}; valid: {', '.join(self)}")
        return self[name]
