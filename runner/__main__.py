"""`python -m runner [overrides]`: train, evaluate and record one model (or a sweep with -m).

The keys changed most: model= (a file of conf/model/), data= (digits, imagenette, imagenet, folder,
synthetic) with data.root, trainer.epochs and trainer.batch_size, optimizer= with optimizer.lr,
schedule=, model.weights= (imagenet, a file or runs:/<run_id>), experiment= (a paper's recipe) and
hparams_search=optuna. The run is recorded in MLflow; the same command after a crash resumes from the
last completed epoch.
"""

import pathlib

from omegaconf import DictConfig

from runner import disk
from runner.shell.app import hydra_app

# What SIGTERM or Ctrl-C leave, said after the stop: training stops at a step boundary.
WHEN_STOPPED = "the same command resumes from the last completed epoch"


@hydra_app("config", __doc__, "python -m runner model=resnet18 data=imagenette trainer.epochs=5", WHEN_STOPPED,
           gpu_note=True, stops_at_once=False, full_disk_advice=disk.RESUMES)
def main(cfg: DictConfig, run_dir: pathlib.Path) -> float:
    from runner.training.train import train  # TensorFlow's imports wait until the config has composed

    return train(cfg, run_dir).objective


if __name__ == "__main__":
    main()
