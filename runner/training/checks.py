"""A run's config, refused before anything is built or recorded when no run can use it: a value below
its bound, a name no table holds, or keys that contradict each other."""

from omegaconf import DictConfig, OmegaConf

from runner.config.bounds import check_bounds
from runner.config.schema import MULTISCALE_METRICS, TEN_CROP_METRICS, Config
from runner.data.augment import CROPS
from runner.data.splits import SOURCES
from runner.mistakes.errors import UserError
from runner.training.optim import OPTIMIZERS, SCHEDULES

CHOICES = (SOURCES, CROPS, OPTIMIZERS, SCHEDULES)


def check_trainer(cfg: DictConfig) -> None:
    """Raise UserError naming the first key whose value no run can use."""
    check_bounds(cfg, Config)
    for table in CHOICES:
        table.of(OmegaConf.select(cfg, table.key))
    objective = cfg.sweep.objective
    if objective in TEN_CROP_METRICS and not cfg.eval.ten_crop:
        raise UserError(f"sweep.objective={objective.value}: expected eval.ten_crop=true, which logs it")
    if objective in MULTISCALE_METRICS and not cfg.eval.scales:
        raise UserError(f"sweep.objective={objective.value}: expected eval.scales=[...], which logs it")
    if cfg.trainer.resume_run and not cfg.trainer.resume:
        raise UserError(f"trainer.resume_run={cfg.trainer.resume_run}: expected trainer.resume=true "
                        "(false starts afresh)")
    if cfg.trainer.unfreeze_epoch is not None and not cfg.model.freeze:
        raise UserError(f"trainer.unfreeze_epoch={cfg.trainer.unfreeze_epoch}: expected model.freeze=<row> "
                        "(nothing is frozen to train again)")
