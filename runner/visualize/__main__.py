"""`python -m runner.visualize`: what a trained network sees, as Zeiler & Fergus (2014) showed it.

visualize.run_id=ID, else the latest FINISHED run that is not a sweep's parent, in the store training
uses (MLFLOW_TRACKING_URI, else tracking.uri, else outputs/mlflow.db). Its model (the logged
model.keras artifact, else <hydra.output_dir tag>/model.keras) and its own validation images make
filters.png, feature_maps_<row>.png, top_images_<row>.png and guided_backprop_<row>.png in Hydra's
folder (outputs/visualize/...), logged on that run under visualize/; no MLflow run of its own.
Options and the PNG sizes: runner/schema.py VisualizeConfig and runner/visualize/render.py.
"""

import os
import pathlib

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from runner import schema
from runner.app import hydra_app
from runner.errors import reported_as_one_line
from runner.tracking.store import store_uri
from runner.visualize.source import open_store

schema.register()


@hydra_app("visualize")
def main(cfg: DictConfig) -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per small download is noise
    # TensorFlow's imports, once the config has composed
    from runner.visualize.run import visualize_run

    with reported_as_one_line():
        client = open_store(store_uri(cfg))
        result = visualize_run(client, cfg.visualize, pathlib.Path(HydraConfig.get().runtime.output_dir))
    for note in result.notes:
        print(f"note: {note}")
    for path, artifact in zip(result.paths, result.artifacts):
        print(f"wrote {path}  (artifact {artifact})")
    print(f"logged on MLflow run {result.run.info.run_id} ({result.run.info.run_name})")


if __name__ == "__main__":
    main()
