"""`python -m runner.predict predict.model=M predict.images=P`: each image's top classes.

M is `runs:/<run_id>` (the run's model.keras, as MLflow names a run's files) or a model.keras file;
instead of M, `model=<name> model.weights=<imagenet | file | runs:/<run_id>>` (the weights' card names
the classes). P is an image file, a folder (searched recursively) or a glob. The images are read,
resized and centre-cropped as the weights' card says their evaluation did, in batches through
tf.data; an unreadable file is skipped with a warning. It prints a table, or with
predict.output=<file>.csv writes the columns file,rank,class,probability (rank 1 the top
prediction, predict.top_k ranks per file).
"""

import pathlib

from omegaconf import DictConfig

from runner.shell.app import hydra_app

# What SIGTERM or Ctrl-C leave, said after the stop (runner/training/stops.py stopped_in_one_line).
WHEN_STOPPED = "no partial CSV is left"


@hydra_app("predict", __doc__, "python -m runner.predict model=resnet50 model.weights=imagenet predict.images=photos/",
           WHEN_STOPPED, download_bars=False)
def main(cfg: DictConfig, run_dir: pathlib.Path) -> None:
    from runner.predict.predictions import predict, write  # TensorFlow's imports, once the config has composed

    print(write(predict(cfg), cfg.predict))


if __name__ == "__main__":
    main()
