"""`python -m runner.compare`: the jobs of a sweep side by side, from the MLflow store.

compare.run_id=ID (a sweep's parent run), else the latest sweep, optionally only in
compare.experiment=NAME and with a tag, "compare.tag='key=value'" (quoted: Hydra's override grammar
reserves an unquoted =). Prints the table and writes comparison.md, .csv and .png into Hydra's run
folder, logged on the parent run too.
"""

import pathlib

from omegaconf import DictConfig

from runner.shell.app import hydra_app

# What SIGTERM or Ctrl-C leave, said after the stop (runner/training/stops.py stopped_in_one_line).
WHEN_STOPPED = "run it again for the comparison"


@hydra_app("compare", __doc__, "python -m runner.compare compare.experiment=lrn_ablation", WHEN_STOPPED,
           tensorflow=False)  # MLflow and matplotlib only
def main(cfg: DictConfig, run_dir: pathlib.Path) -> None:
    from runner.compare.comparison import compare_sweep  # MLflow's imports wait until the config has composed
    from runner.compare.select import existing_store, find_sweep
    from runner.tracking.store import store_uri

    client = existing_store(store_uri(cfg))
    parent = find_sweep(client, cfg.compare.run_id, cfg.compare.experiment, cfg.compare.tag)
    comparison = compare_sweep(client, parent.info.run_id, run_dir)
    print(comparison.table)
    print()
    print(comparison.written)


if __name__ == "__main__":
    main()
