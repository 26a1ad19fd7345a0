"""`python -m runner.bench [overrides]`: how fast this machine feeds and trains the configured model.

Takes the runner's overrides (model=, data=, data.root=, trainer.*, ...) and measures, one after
another in this process: decode_images_per_second (the training files decoded whole, on every core:
the limit), train_pipeline_images_per_second (runner.data's training pipeline, first pass),
cached_pipeline_images_per_second (the same with data.cache, after the first epoch),
keras_baseline_images_per_second (keras.utils.image_dataset_from_directory with RandomCrop and
RandomFlip), step_images_per_second (the compiled training step on batches in memory),
peer_step_images_per_second (the same network's step in PyTorch, on the same batches, precision and
threads, when torch is installed: runner/bench/peer.py) and fit_images_per_second
(runner.training.loop.fit on real batches, callbacks and MLflow included); each stage's peak resident
memory, and the ratios pipeline/decode, cached/decode, pipeline/keras, fit/step and step/peer. Prints
a table, writes bench.json (bench.output) and with bench.log_mlflow=true records an MLflow run.
Settings: conf/bench.yaml; how each figure is taken: runner/bench/stages.py.

`"bench.stages=[infer]"` (named, never by default: exporting takes tens of seconds a format) adds a
table for deploying the model: the stand-alone model in Keras, SavedModel, TFLite and ONNX Runtime, each
export checked against Keras, with images/s at bench.infer_batch and latency (median, 99th percentile)
at batch 1; bench.json's "inference" section and infer_<format>_* metrics (runner/bench/inference.py).
"""

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from runner import schema
from runner.app import hydra_app
from runner.errors import reported_as_one_line
from runner.logs import quiet_libraries

schema.register()


@hydra_app("bench")
def main(cfg: DictConfig) -> None:
    import pathlib

    import keras  # TensorFlow's import waits until the config has composed

    from runner.bench.report import table
    from runner.bench.run import run_bench
    from runner.training.gpu_notice import say_when_no_gpu

    quiet_libraries()
    say_when_no_gpu(cfg.trainer)
    try:
        with reported_as_one_line():
            result, path = run_bench(cfg, pathlib.Path(HydraConfig.get().runtime.output_dir))
    finally:
        keras.backend.clear_session()  # a multirun benches its jobs in this process
    print()
    print(table(result))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
