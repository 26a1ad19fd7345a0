"""`python -m runner [overrides]`: train, evaluate and record one model (or a sweep with -m)."""

import hydra
from omegaconf import DictConfig

from runner import schema
from runner.errors import reported_as_one_line

schema.register()


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    import keras  # the trainer's imports wait until the config has composed

    from runner.train import train

    with reported_as_one_line():
        try:
            return train(cfg)
        finally:
            keras.backend.clear_session()  # a basic-launcher multirun runs its jobs in this process


if __name__ == "__main__":
    main()
