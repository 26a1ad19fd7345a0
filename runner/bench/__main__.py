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

import pathlib

from omegaconf import DictConfig

from runner.shell.app import hydra_app

# What SIGTERM or Ctrl-C leave, said after the stop (runner/training/stops.py stopped_in_one_line).
WHEN_STOPPED = "no bench.json is written; run it again for the measurements"


@hydra_app("bench", __doc__, "python -m runner.bench model=resnet18 data=imagenette data.root=/data/imagenette2-320",
           WHEN_STOPPED, gpu_note=True)
def main(cfg: DictConfig, run_dir: pathlib.Path) -> None:
    from runner.bench.measuring import run_bench
    from runner.bench.summary import table  # TensorFlow's imports wait until the config has composed

    result, path = run_bench(cfg, run_dir)
    print()
    print(table(result))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
