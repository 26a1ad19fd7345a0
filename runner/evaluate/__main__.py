"""`python -m runner.evaluate model=X model.weights=W data=D`: evaluate weights without training.

W is `imagenet` (the published weights), `runs:/<run_id>` or a file; the usual data.* keys and
eval.ten_crop apply. The run is recorded in MLflow with the metrics training ends with (eval_top1,
eval_top5, and with eval.ten_crop the 10-crop pair), the confusion matrix and the weights' source.
ImageNet weights on a dataset whose classes are ImageNet synsets (Imagenette's folders) are scored
on those classes' logits alone, with no new head.
"""


from omegaconf import DictConfig

from runner import schema
from runner.app import hydra_app
from runner.errors import reported_as_one_line
from runner.logs import quiet_libraries

schema.register()


@hydra_app("config")
def main(cfg: DictConfig) -> float:
    import keras  # after the config has composed

    from runner.evaluate.run import evaluate_weights
    from runner.training.gpu_notice import say_when_no_gpu

    quiet_libraries()
    say_when_no_gpu(cfg.trainer)
    with reported_as_one_line():
        try:
            return evaluate_weights(cfg)
        finally:
            keras.backend.clear_session()  # a multirun evaluates its jobs in this process


if __name__ == "__main__":
    main()
