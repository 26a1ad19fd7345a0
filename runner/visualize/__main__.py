"""`python -m runner.visualize`: what a trained network sees, as Zeiler & Fergus (2014) showed it.

visualize.model=runs:/<run_id>, else (model.weights unset) the latest FINISHED training run, in the
store training uses (MLFLOW_TRACKING_URI, else tracking.uri, else outputs/mlflow.db): its model (the
logged model.keras artifact, else <hydra.output_dir tag>/model.keras) and its own validation images;
the figures are logged on that run under visualize/. With model.weights (imagenet, a file) and
visualize.model unset, or visualize.model=<a model.keras file>: those weights on model= and data='s
validation images, logged on a new run (tag runner.role=visualize). The PNGs land in Hydra's folder
(outputs/visualize/...): filters.png, feature_maps_<row>.png, top_images_<row>.png,
projections_<row>.png, figure2_<row>.png, gradcam_<row>.png and occlusion.png.
Options and the PNG sizes: runner/schema.py VisualizeConfig and runner/visualize/render.py.
"""

import os
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
WHEN_STOPPED = "a run it had started ended KILLED"


@hydra_app("visualize")
def main(cfg: DictConfig) -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per small download is noise
    import keras  # TensorFlow's imports, once the config has composed

    from runner.visualize.run import visualize_model

    quiet_libraries()
    with reported_as_one_line(), stopped_in_one_line(WHEN_STOPPED):
        try:
            hydra_config = HydraConfig.get()
            result = visualize_model(cfg, pathlib.Path(hydra_config.runtime.output_dir), hydra_config.overrides.task)
        finally:
            keras.backend.clear_session()  # a multirun draws its jobs in this process
    for note in result.notes:
        print(f"note: {note}")
    for path, artifact in zip(result.paths, result.artifacts):
        print(f"wrote {path}  (artifact {artifact})")
    print(f"logged on MLflow run {result.run_id}")


if __name__ == "__main__":
    main()
