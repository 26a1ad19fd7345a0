"""`python -m runner.describe model=X`: the architecture report, row by row, as the article reads.

describe.format=table|markdown|json, describe.output=FILE. With -m, several models in one process.
Each row shows its feature maps, how the size follows, its receptive field (RF: the input pixels
per side one output unit sees) and jump (input pixels between neighbouring units), parameters and
MACs. Rows after the last feature map (global pooling, flatten, dense) see the whole input: RF
"global" in the table, `receptive_field` and `jump` null in JSON.
"""

import pathlib

from omegaconf import DictConfig

from runner import schema
from runner.app import hydra_app
from runner.errors import reported_as_one_line
from runner.training.stops import stopped_in_one_line

schema.register()
# What SIGTERM or Ctrl-C leave, said after the stop (runner/training/stops.py stopped_in_one_line).
WHEN_STOPPED = "run it again for the report"


@hydra_app("describe")
def main(cfg: DictConfig) -> None:
    import keras  # TensorFlow's imports wait until the config has composed

    from runner.training.model_report import describe, render

    keras.backend.clear_session()  # a multirun describes many models in one process
    with reported_as_one_line(), stopped_in_one_line(WHEN_STOPPED):
        text = render(describe(cfg), cfg.describe.format.value)
    if cfg.describe.output:
        path = pathlib.Path(cfg.describe.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    else:
        print(text)


if __name__ == "__main__":
    main()
