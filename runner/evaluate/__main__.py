"""`python -m runner.evaluate model=X model.weights=W data=D`: evaluate weights without training.

W is `imagenet[:<tag>]` (published weights), `runs:/<run_id>` or a file; the usual data.* keys,
eval.ten_crop and eval.scales apply, and only the validation split is read (a folder of val/ alone will
do). The run is recorded in MLflow with the metrics training ends with (eval_top1, eval_top5, with
eval.ten_crop the 10-crop pair, with eval.scales the multiscale pair), the publisher's (published_top1,
published_top5) when the weights' card has them, the confusion matrix and the card. Weights of more
classes than the data's, which are among them (ImageNet's on Imagenette's synset folders), are scored on
those classes' logits alone.
"""

import pathlib

from omegaconf import DictConfig

from runner.shell.app import hydra_app

# What SIGTERM or Ctrl-C leave, said after the stop (runner/training/stops.py stopped_in_one_line).
WHEN_STOPPED = "an evaluation run it had started ended KILLED"


@hydra_app("config", __doc__, "python -m runner.evaluate model=resnet50 model.weights=imagenet data=imagenette",
           WHEN_STOPPED, gpu_note=True)
def main(cfg: DictConfig, run_dir: pathlib.Path) -> float:
    # TensorFlow's imports, once the config has composed
    from runner.evaluate.weights_evaluation import evaluate_weights

    return evaluate_weights(cfg).objective


if __name__ == "__main__":
    main()
