"""`python -m runner.export export.model=M export.format=saved_model|onnx|tflite export.output=DIR`.

M is `runs:/<run_id>` or a model.keras file, or instead `model=<name> model.weights=<imagenet | file |
runs:/<run_id>>`: the stand-alone model (0-255 images in, probabilities
out; GoogLeNet's auxiliary heads, which only training uses, are not part of it). DIR receives
saved_model/, model.onnx or model.tflite, through Keras's own `model.export` where it serves (the
SavedModel and ONNX) and TensorFlow's converter for TFLite. Each export is run on the spot on a few
images and compared with the Keras model, and refused (nothing written) if they disagree.
"""

import pathlib

from omegaconf import DictConfig

from runner.shell.app import hydra_app

# What SIGTERM or Ctrl-C leave, said after the stop (runner/training/stops.py stopped_in_one_line).
WHEN_STOPPED = "no partial export is left"


@hydra_app("export", __doc__,
           "python -m runner.export export.model=runs:/<run_id> export.format=tflite export.output=exported/",
           WHEN_STOPPED)
def main(cfg: DictConfig, run_dir: pathlib.Path) -> None:
    from runner.export.exporting import export  # TensorFlow's imports, once the config has composed

    path, difference = export(cfg, run_dir)
    print(f"wrote {path}: largest difference from Keras {difference:.2e} on {cfg.export.check_images} images")


if __name__ == "__main__":
    main()
