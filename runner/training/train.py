"""One training run, start to finish; reads like a table of contents."""

import pathlib

from omegaconf import DictConfig

from runner.tracking.server import check_store
from runner.training import resume
from runner.training.callbacks import standard_callbacks
from runner.training.checks import check_trainer
from runner.training.evaluation import final_evaluation, sweep_objective
from runner.training.loop import EpochHooks, fit
from runner.training.record import record_end, record_start, recorder
from runner.training.session import Session, prepare
from runner.training.stops import DeferredStops, stop_if_requested
from runner.training.strategy import lost_workers_reported


def train(cfg: DictConfig, output_dir: pathlib.Path) -> float:
    """Train, evaluate and record one run in `output_dir` (a resumed run: where it began); returns
    sweep.objective, what a sweeper optimises."""
    check_trainer(cfg)
    check_store(cfg)  # a tracking server that does not answer: refused in seconds, before anything is built
    session = prepare(cfg)  # every user mistake surfaces before the MLflow run starts
    with resume.claimed(cfg, session.worker) as folder:  # one live process per resume point
        return _train(session, folder, output_dir)


def _train(session: Session, folder: pathlib.Path, output_dir: pathlib.Path) -> float:
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
    return sweep_objective(cfg, final, trained)
