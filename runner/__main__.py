"""`python -m runner [overrides]`: train, evaluate and record one model (or a sweep with -m)."""

import logging
import sys

import hydra
from omegaconf import DictConfig

from runner import schema
from runner.errors import reported_as_one_line

schema.register()

# 128 + the signal's number, as a shell reports a process the signal ended.
INTERRUPTED_EXIT_CODES = {"SIGTERM": 143, "SIGINT": 130}


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    import keras  # the trainer's imports wait until the config has composed

    # Hydra logs at INFO; TensorFlow's and absl's INFO lines (one per collective under multi_worker) are noise.
    for chatty in ("tensorflow", "absl"):
        logging.getLogger(chatty).setLevel(logging.WARNING)

    from runner.train import train

    with reported_as_one_line():
        try:
            return train(cfg)
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM from a scheduler (runner/training/stops.py)
            signal_name = "SIGTERM" if "SIGTERM" in str(stop) else "SIGINT"
            print(f"stopped by {signal_name}; the same command resumes from the last completed epoch",
                  file=sys.stderr)
            sys.exit(INTERRUPTED_EXIT_CODES[signal_name])
        finally:
            keras.backend.clear_session()  # a basic-launcher multirun runs its jobs in this process


if __name__ == "__main__":
    main()
