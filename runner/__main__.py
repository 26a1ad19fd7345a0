"""`python -m runner [overrides]`: train, evaluate and record one model (or a sweep with -m)."""

import pathlib
import signal
import sys

from omegaconf import DictConfig

from runner import disk, schema
from runner.app import hydra_app
from runner.errors import reported_as_one_line
from runner.logs import quiet_libraries

schema.register()


@hydra_app("config")
def main(cfg: DictConfig) -> float:
    import keras  # the trainer's imports wait until the config has composed
    from hydra.core.hydra_config import HydraConfig

    from runner.training.gpu_notice import say_when_no_gpu
    from runner.signals import Stopped
    from runner.training.train import train

    quiet_libraries()
    say_when_no_gpu(cfg.trainer)

    with reported_as_one_line(disk.RESUMES):
        try:
            return train(cfg, pathlib.Path(HydraConfig.get().runtime.output_dir))
        except KeyboardInterrupt as interrupt:  # a stop runner/training/stops.py raised, or a plain Ctrl-C
            stop = interrupt if isinstance(interrupt, Stopped) else Stopped(signal.SIGINT)
            print(f"stopped by {stop.signal.name}; the same command resumes from the last completed epoch",
                  file=sys.stderr)
            sys.exit(stop.exit_code)
        finally:
            keras.backend.clear_session()  # a basic-launcher multirun runs its jobs in this process


if __name__ == "__main__":
    main()
