"""Numbers a run cannot start with, refused before anything is built or recorded.

The schema already rejects a wrong type (`trainer.epochs=many`) when the config is composed; these
are values of the right type that TensorFlow would only reject later, with a traceback from deep
inside tf.data or Keras (`trainer.batch_size=0` fails in BatchDatasetV2).
"""

from omegaconf import DictConfig, OmegaConf

from runner.errors import UserError

# Each key's smallest valid value; a null, where the schema allows one, means "not set" and passes.
MINIMUM = {
    "trainer.batch_size": 1,
    "trainer.steps_per_execution": 1,
    "trainer.steps_per_epoch": 1,  # null: one pass over the data
    "trainer.cpu_replicas": 0,
    "trainer.early_stopping_patience": 0,  # 0: off
    "trainer.seed": 0,  # NumPy refuses negative seeds
    "data.num_classes": 1,
    "data.train_size": 1,
    "data.val_size": 1,
    "data.shuffle_buffer": 1,
    "schedule.warmup_epochs": 0,
    "schedule.patience": 0,
}


def check_trainer(cfg: DictConfig) -> None:
    """Raise UserError naming the first key whose value no run can use."""
    if cfg.trainer.epochs < 1:
        raise UserError(f"trainer.epochs={cfg.trainer.epochs}: train for at least 1 epoch")
    for key, minimum in MINIMUM.items():
        _check_at_least(key, OmegaConf.select(cfg, key), minimum)
    for index, epoch in enumerate(cfg.schedule.step_epochs):
        _check_at_least(f"schedule.step_epochs[{index}]", epoch, 1)


def _check_at_least(key: str, value, minimum: int) -> None:
    if value is None or value >= minimum:
        return
    expected = "a positive int" if minimum == 1 else f"an int >= {minimum}"
    raise UserError(f"{key}={value}: expected {expected}")
