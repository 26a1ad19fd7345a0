"""`model.freeze=<row>`: that row and every row before it are not trained, as in Keras's
transfer-learning guide: a frozen layer's weights get no gradient, and a frozen batch norm runs in
inference mode (its moving statistics stay those of the weights). `trainer.unfreeze_epoch` trains
them again from that epoch on (1-based), usually at a smaller rate.
"""

from omegaconf import DictConfig

from builders import names
from builders.rows import BuiltModel
from runner.mistakes.errors import UserError


def frozen_layers(built: BuiltModel, row: str | None) -> list:
    """The layers of `row` (a row's name as describe lists it, or a repeated row's YAML name, for
    all its blocks) and of every row before it; none without a row."""
    if not row:
        return []
    applications = [applied.application for applied in built.rows]
    applied_names = [application.name for application in applications]
    matching = [index for index, application in enumerate(applications) if _is_row(application.name, row)]
    if not matching:
        raise UserError(f"model.freeze={row}: no such row; rows: {', '.join(applied_names)}")
    by_row = names.layers_by_row(built.model, applications)
    return [layer for name in applied_names[: matching[-1] + 1] for layer in by_row[name].layers]


def _is_row(name: str, row: str) -> bool:
    """`name` is row `row` or one of its blocks (`names.repeated`: conv2 -> conv2_block1, ...)."""
    prefix = names.repeated(row, 1).removesuffix("1")
    return name == row or (name.startswith(prefix) and name[len(prefix):].isdigit())


def freeze(built: BuiltModel, cfg: DictConfig, epoch: int) -> None:
    """Sets which layers train in `epoch` (0-based): the layers themselves hold it (layer.trainable)."""
    layers = frozen_layers(built, cfg.model.freeze)
    unfrozen = cfg.trainer.unfreeze_epoch is not None and epoch + 1 >= cfg.trainer.unfreeze_epoch
    for layer in layers:
        layer.trainable = unfrozen


def thaws_at(cfg: DictConfig, epoch: int) -> bool:
    """Whether the frozen rows start training in `epoch` (0-based): the steps must be traced again."""
    return bool(cfg.model.freeze) and cfg.trainer.unfreeze_epoch == epoch + 1
