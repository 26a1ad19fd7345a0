"""`python -m runner [overrides]`: train, evaluate and record one model (or a sweep with -m)."""

import logging
import pathlib
import sys

import hydra
from omegaconf import DictConfig

from runner import schema
from runner.errors import reported_as_one_line

schema.register()

SIGINT_EXIT_CODE = 130  # 128 + SIGINT, as a shell reports a process that Ctrl-C ended


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    import keras  # the trainer's imports wait until the config has composed
    from hydra.core.hydra_config import HydraConfig

    from runner.training.stops import Stopped
    from runner.training.train import train

    # Hydra logs at INFO; TensorFlow's and absl's INFO lines (one per collective under multi_worker) are noise.
    for chatty in ("tensorflow", "absl"):
        logging.getLogger(chatty).setLevel(logging.WARNING)

    with reported_as_one_line():
        try:
            return train(cfg, pathlib.Path(HydraConfig.get().runtime.output_dir))
        except KeyboardInterrupt as stop:  # Ctrl-C, or a stop that runner/training/stops.py raised (SIGTERM)
            name, code = (stop.signal.name, stop.exit_code) if isinstance(stop, Stopped) else ("SIGINT", SIGINT_EXIT_CODE)
            print(f"stopped by {name}; the same command resumes from the last completed epoch", file=sys.stderr)
            sys.exit(code)
        finally:
            keras.backend.clear_session()  # a basic-launcher multirun runs its jobs in this process


if __name__ == "__main__":
    main()
