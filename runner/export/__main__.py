"""`python -m runner.export export.model=M export.format=saved_model|onnx|tflite export.output=DIR`.

M is `runs:/<run_id>` or a model.keras file, or instead `model=<name> model.weights=<imagenet | file |
runs:/<run_id>>`: the stand-alone model (0-255 images in, probabilities
out; GoogLeNet's auxiliary heads, which only training uses, are not part of it). DIR receives
saved_model/, model.onnx or model.tflite, through Keras's own `model.export` where it serves (the
SavedModel and ONNX) and TensorFlow's converter for TFLite. Each export is run on the spot on a few
images and compared with the Keras model, and refused (nothing written) if they disagree.
"""

import pathlib

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from runner import schema
from runner.app import hydra_app
from runner.errors import reported_as_one_line
from runner.logs import quiet_libraries
from runner.training.stops import stopped_in_one_line

schema.register()
# What SIGTERM or Ctrl-C leave, said after the stop (runner/training/stops.py stopped_in_one_line).
WHEN_STOPPED = "no partial export is left"


@hydra_app("export")
def main(cfg: DictConfig) -> None:
    from runner.export.run import export  # TensorFlow's imports, once the config has composed

    quiet_libraries()
    with reported_as_one_line(), stopped_in_one_line(WHEN_STOPPED):
        path, difference = export(cfg, pathlib.Path(HydraConfig.get().runtime.output_dir))
    print(f"wrote {path}: largest difference from Keras {difference:.2e} on {cfg.export.check_images} images")


if __name__ == "__main__":
    main()
