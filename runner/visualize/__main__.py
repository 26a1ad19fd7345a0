"""`python -m runner.visualize`: what a trained network sees, as Zeiler & Fergus (2014) showed it.

visualize.model=runs:/<run_id>, else (model.weights unset) the latest FINISHED training run, in the
store training uses (MLFLOW_TRACKING_URI, else tracking.uri, else outputs/mlflow.db): its model (the
logged model.keras artifact, else <hydra.output_dir tag>/model.keras) and its own validation images;
the figures are logged on that run under visualize/. With model.weights (imagenet, a file) and
visualize.model unset, or visualize.model=<a model.keras file>: those weights on model= and data='s
validation images, logged on a new run (tag runner.role=visualize). The PNGs land in Hydra's folder
(outputs/visualize/...): filters.png, feature_maps_<row>.png, top_images_<row>.png,
projections_<row>.png, figure2_<row>.png, gradcam_<row>.png and occlusion.png.
Options and the PNG sizes: runner/config/schema.py VisualizeConfig and runner/visualize/render.py.
"""

import pathlib

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from runner.shell.app import hydra_app

# What SIGTERM or Ctrl-C leave, said after the stop (runner/training/stops.py stopped_in_one_line).
WHEN_STOPPED = "a run it had started ended KILLED"


@hydra_app("visualize", __doc__, "python -m runner.visualize visualize.model=runs:/<run_id>", WHEN_STOPPED,
           download_bars=False)
def main(cfg: DictConfig, run_dir: pathlib.Path) -> None:
    from runner.visualize.visualization import visualize_model  # TensorFlow's imports, once the config has composed

    result = visualize_model(cfg, run_dir, HydraConfig.get().overrides.task)
    for note in result.notes:
        print(f"note: {note}")
    for path, artifact in zip(result.paths, result.artifacts):
        print(f"wrote {path}  (artifact {artifact})")
    print(f"logged on MLflow run {result.run_id}")


if __name__ == "__main__":
    main()
