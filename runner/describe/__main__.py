"""`python -m runner.describe model=X`: the architecture report, row by row, as the article reads.

describe.format=table|markdown|json, describe.output=FILE. With -m, several models in one process.
describe.format=png|svg draws the network instead (runner/architecture/picture.py): a picture is
not printed, so without describe.output it is written to <model>.png (or .svg) in the current folder.
Each row shows its feature maps, how the size follows, its receptive field (RF: the input pixels
per side one output unit sees) and jump (input pixels between neighbouring units), parameters and
MACs. Rows after the last feature map (global pooling, flatten, dense) see the whole input: RF
"global" in the table, `receptive_field` and `jump` null in JSON.
"""

import pathlib

from omegaconf import DictConfig

from runner.shell.app import hydra_app

# What SIGTERM or Ctrl-C leave, said after the stop (runner/training/stops.py stopped_in_one_line).
WHEN_STOPPED = "run it again for the report"
PICTURES = ("png", "svg")


@hydra_app("describe", __doc__, "python -m runner.describe model=alexnet describe.format=markdown", WHEN_STOPPED)
def main(cfg: DictConfig, run_dir: pathlib.Path) -> None:
    from runner.architecture.tables import describe, render  # TensorFlow's imports, once the config has composed

    fmt = cfg.describe.format.value
    result = describe(cfg)
    if fmt in PICTURES:
        draw(cfg, result, fmt)
        return
    text = render(result, fmt)
    if cfg.describe.output:
        path = pathlib.Path(cfg.describe.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    else:
        print(text)


def draw(cfg: DictConfig, result, fmt: str) -> None:
    from runner.architecture.picture import figure, save
    from runner.architecture.tables import model_spec

    path = pathlib.Path(cfg.describe.output or f"{result.model}.{fmt}")
    path.parent.mkdir(parents=True, exist_ok=True)
    save(figure(result, model_spec(cfg)), path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
