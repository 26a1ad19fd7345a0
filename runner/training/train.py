"""One training run, start to finish; reads like a table of contents."""

import dataclasses
import pathlib

import keras
from omegaconf import DictConfig

from runner.session.parts import Session, prepare
from runner.session.strategy import lost_workers_reported
from runner.tracking.server import check_store
from runner.training import resume
from runner.training.callbacks import standard_callbacks
from runner.training.checks import check_trainer
from runner.training.evaluation import final_evaluation, sweep_objective
from runner.training.loop import EpochHooks, fit
from runner.training.record import record_end, record_start, recorder
from runner.training.stops import DeferredStops, stop_if_requested


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a run ends with, for its caller (the app hands the objective to a sweeper; a test or a notebook
    reads the rest without the store), as lightning-hydra-template's train returns its metrics and objects."""
    objective: float  # sweep.objective's value: what a sweeper optimises
    metrics: dict[str, float]  # the final evaluation's (eval_top1, ...) and the last epoch's (loss, val_top1, ...)
    history: dict[str, list[float]]  # per-epoch logs, a resumed run's earlier epochs included
    model: keras.Model  # the trained network (logits; the saved model.keras adds the preprocessing)
    model_file: pathlib.Path  # the saved model.keras
    run_id: str | None  # the MLflow run; None on a multi-worker run's other workers, which record nothing


def train(cfg: DictConfig, output_dir: pathlib.Path) -> TrainResult:
    """Train, evaluate and record one run in `output_dir` (a resumed run: where it began)."""
    check_trainer(cfg)
    check_store(cfg)  # a tracking server that does not answer: refused in seconds, before anything is built
    session = prepare(cfg)  # every user mistake surfaces before the MLflow run starts
    with resume.claimed(cfg, session.worker) as folder:  # one live process per resume point
        return _train(session, folder, output_dir)


def _train(session: Session, folder: pathlib.Path, output_dir: pathlib.Path) -> TrainResult:
    cfg = session.cfg
    with lost_workers_reported(session.strategy):  # a worker's mistake here leaves the others waiting
        start = resume.locate(cfg, session.strategy, session.worker, output_dir, folder)
    with DeferredStops(), recorder(session, start) as run:
        record_start(run, session, start)
        point = resume.ResumePoint(start, session.model, session.training.optimizer, run.run_id)
        hooks = EpochHooks(standard_callbacks(cfg, start.run_dir), resume_point=point, recorder=run)
        with lost_workers_reported(session.strategy):
            trained = fit(session, hooks)
            final = final_evaluation(session, trained.last_evaluation)
        stop_if_requested()  # a stop asked for during the evaluation: the resume point redoes only that
        record_end(run, session, trained, final, start.run_dir)
        run.confirm_metrics()  # a tracking server holds every epoch before the resume point goes
    point.finished()  # once the run's end is recorded: a store that failed to end it leaves the point for the rerun
    last_epoch = {key: values[-1] for key, values in trained.history.items() if values}
    return TrainResult(objective=sweep_objective(cfg, final, trained), metrics={**last_epoch, **final.metrics},
                       history=dict(trained.history), model=session.model, model_file=start.run_dir / "model.keras",
                       run_id=run.run_id)
