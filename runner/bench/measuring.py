"""The bench: six throughput figures measured one after another in this process, each stage's peak
resident memory, and their record (JSON, table, optionally MLflow); __main__.py is the app.

The input stages run in turn bench.rounds times and each figure is the median of its rounds: a
shared machine's speed drifts by tens of percent within a minute, and a ratio of two stages
measured at different moments would carry that drift. The model stages run once (they compile).

Stages (stages.py): decode (the machine's JPEG-decode limit), pipeline (runner.data's training
pipeline, first pass), cached (the same with data.cache, after the first epoch), keras (Keras's
folder loader with RandomCrop and RandomFlip), step (the compiled training step on batches in
memory) and fit (runner.training.loop.fit on real batches, callbacks and MLflow included); both
start from the session that runner.session.parts.prepare sets up, as training does.

infer (inference.py; asked by name, not measured by default) is a table of its own, not a figure:
the stand-alone model in Keras, SavedModel, TFLite and ONNX Runtime, images/s and latency each.
"""

import contextlib
import datetime
import gc
import json
import pathlib
from typing import Callable, Iterator, Optional

from omegaconf import DictConfig

from runner import disk
from runner.bench import peer, stages
from runner.bench.figures import FIGURES, INPUT_STAGES, NOT_ASKED, STAGES, Bench, Stage, median_round
from runner.bench.inference import infer
from runner.bench.inference_rows import STAGE as INFER, Inference
from runner.bench.memory import PeakRss
from runner.bench.summary import machine, settings
from runner.config.bounds import check_bounds
from runner.config.schema import BenchConfig
from runner.mistakes.errors import UserError
from runner.session.parts import Session, prepare
from runner.tracking.labels import BENCH_ROLE, ROLE_TAG
from runner.tracking.run import Run
from runner.training.checks import check_trainer


def run_bench(cfg: DictConfig, output_dir: pathlib.Path) -> tuple[Bench, pathlib.Path]:
    """Measures every stage of cfg.bench.stages; writes the JSON (and the MLflow run); returns both."""
    check(cfg)
    # Every user mistake (model, data, optimizer) surfaces before the first measurement.
    session = prepare(stages.with_values(cfg, {"data.cache": False}))
    print(f"bench: {settings(cfg, session)}")
    with _bench_run(cfg) as run:
        measures: dict[str, Callable[[], tuple[int, float]]] = {
            "decode": lambda: stages.decode(cfg),
            "pipeline": lambda: stages.pipeline(cfg, session.splits.train),
            "cached": lambda: stages.cached(cfg, session.splits.train_examples),
            "keras": lambda: stages.keras_baseline(cfg),
            "step": lambda: stages.step(cfg, session),
            "peer": lambda: peer.peer_step(cfg, session),
            "fit": lambda: stages.fit(cfg, session, run, output_dir / "fit"),
        }
        wanted = set(cfg.bench.stages)
        rounds: dict[str, list[Stage]] = {name: [] for name in STAGES}
        for _ in range(cfg.bench.rounds):
            for name in INPUT_STAGES:
                rounds[name].append(_measure(name, measures[name], wanted))
        for name in STAGES[len(INPUT_STAGES):]:
            rounds[name].append(_measure(name, measures[name], wanted))
        measured = {name: median_round(measurements) for name, measurements in rounds.items()}
        inference = _inference(cfg, session) if INFER in wanted else None
        result = Bench(measured, machine(session.strategy) | peer.software(), settings(cfg, session),
                       session.part.resolved.precision, inference)
        path = pathlib.Path(cfg.bench.output) if cfg.bench.output else output_dir / "bench.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result.as_json(), indent=2) + "\n"
        with disk.written_whole(path) as partial:  # a full disk or a kill leaves no half a JSON
            partial.write_text(text)
        if run is not None:
            _record(run, result, text)
    return result, path


def check(cfg: DictConfig) -> None:
    """Raise UserError for a bench setting no run can use, before anything is built."""
    check_trainer(cfg)
    unknown = [name for name in cfg.bench.stages if name not in (*STAGES, INFER)]
    if unknown:
        raise UserError(f"bench.stages: unknown stage {unknown[0]!r}; valid: {', '.join((*STAGES, INFER))}")
    check_bounds(cfg.bench, BenchConfig, "bench")
    if cfg.trainer.strategy.value == "multi_worker":
        raise UserError("trainer.strategy=multi_worker: the bench measures one process on this machine; "
                        "use trainer.strategy=auto, default or mirrored")


def _measure(name: str, measure: Callable[[], tuple[int, float]], wanted: set[str]) -> Stage:
    if name not in wanted:
        return Stage(name, reason=NOT_ASKED)
    print(f"bench: {name} ...", flush=True)
    gc.collect()  # the previous stage's datasets and caches go before this one's memory is sampled
    with PeakRss() as memory:
        try:
            images, seconds = measure()
        except stages.NotApplicable as why:
            print(f"bench: {name}: not measured: {why}")
            return Stage(name, reason=str(why))
    stage = Stage(name, images, seconds, start_rss_mib=memory.start_mib, peak_rss_mib=memory.peak_mib)
    print(f"bench: {name}: {stage.images_per_second:.1f} images/s ({images} images in {seconds:.2f} s), "
          f"peak RSS {memory.peak_mib:.0f} MiB", flush=True)
    return stage


def _inference(cfg: DictConfig, session: Session) -> Inference:
    print(f"bench: {INFER} ...", flush=True)
    gc.collect()
    return infer(cfg, session)


@contextlib.contextmanager
def _bench_run(cfg: DictConfig) -> Iterator[Optional[Run]]:
    """The bench's MLflow run (bench.log_mlflow), in experiment `bench` unless tracking.experiment
    names one, so it does not sit among the dataset's training runs; else None."""
    if not cfg.bench.log_mlflow:
        yield None
        return
    started = datetime.datetime.now()
    run_name = cfg.tracking.run_name or f"bench-{cfg.model.name}-{cfg.data.name}-{started:%Y%m%d-%H%M%S}"
    named = stages.with_values(cfg, {"tracking.experiment": cfg.tracking.experiment or "bench",
                                     "tracking.run_name": run_name})
    # SIGTERM raises at once (the shell's stopped_in_one_line: the input stages have no step boundaries),
    # so the run ends KILLED.
    with Run(named) as run:
        run.set_tags({ROLE_TAG: BENCH_ROLE})
        yield run


def _record(run: Run, result: Bench, text: str) -> None:
    metrics = {FIGURES[stage]: result.figure(stage) for stage in STAGES} | result.ratios()
    metrics |= {f"peak_rss_mib_{stage}": result.stages[stage].peak_rss_mib for stage in STAGES}
    metrics |= result.inference.metrics() if result.inference else {}
    run.log_metrics(metrics, step=0)
    run.set_tags({f"bench.{stage}.not_measured": stage_.reason
                  for stage, stage_ in result.stages.items() if stage_.reason})
    run.set_tags(result.inference.not_measured() if result.inference else {})
    run.log_text(text, "bench.json")
    print(f"MLflow run {run.run_id}; open the dashboard with:\n  {run.ui_command()}")

