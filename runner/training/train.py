"""One training run, start to finish; reads like a table of contents."""

import pathlib
from typing import Optional

import keras
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import builders
from builders.report import report
from runner import data
from runner.tracking.epochs import EpochLogger
from runner.tracking.run import NotRecorded, Run
from runner.training import loop as trainer, resume
from runner.training.model_report import model_spec, render
from runner.checks import check_trainer
from runner.training.optim import make_optimizer
from runner.training.strategy import (Worker, agreed_epoch, lost_workers_reported, make_strategy, precision, set_precision,
                             shard, steps_per_execution, uses_xla, worker)
from runner.training.stops import DeferredStops, stop_if_requested


def train(cfg: DictConfig) -> float:
    """Train, evaluate and record one run; returns the final validation top-1 (a sweep's objective)."""
    check_trainer(cfg)
    strategy = make_strategy(cfg.trainer)  # before any TensorFlow op: multi_worker configures the runtime
    keras.utils.set_random_seed(cfg.trainer.seed)
    set_precision(cfg.trainer)
    # Every mistake a user can make (model spec, data, optimizer) surfaces before the MLflow run starts.
    with strategy.scope():
        built = builders.build(model_spec(cfg))
        model = built.model
    splits = data.load(cfg, shard(strategy, cfg.trainer.batch_size))
    with strategy.scope():
        optimizer = make_optimizer(cfg, trainer.epoch_steps(cfg, splits))
    architecture = report(built)
    this_worker = worker(strategy)
    resume_dir, point = resume.find(cfg, this_worker.index)
    point = resume.rewound(point, agreed_epoch(strategy, point.epoch if point else 0))
    run_dir = _run_dir(point, this_worker)
    trainer.build_optimizer(model, optimizer, strategy)  # before its state is restored
    # Under multi_worker every worker trains and evaluates (their collectives wait for each other);
    # only the chief records: one MLflow run, whose files the others write to their own folders.
    recorder = Run(cfg, resume_run_id=point.run_id if point else None) if this_worker.chief \
        else NotRecorded(this_worker.index)
    with DeferredStops(), recorder as run:
        if point and this_worker.chief:
            _continue_record(run, point)
        elif not point:
            # What the `auto` settings resolved to on this machine, beside the config's own values.
            run.log_params({"replicas": strategy.num_replicas_in_sync, "workers": this_worker.count,
                            "resolved.precision": precision(cfg.trainer),
                            "resolved.jit_compile": uses_xla(cfg.trainer, strategy),
                            "resolved.steps_per_execution": steps_per_execution(cfg.trainer)})
            # As metrics, so the dashboard can sort and chart runs by size and cost.
            run.log_metrics({"parameters": architecture.total_params,
                             "gmacs": architecture.inference_macs / 1e9,
                             "data_skipped_files": len(splits.skipped_files)}, step=0)
            run.log_text(render(architecture, "markdown"), "architecture.md")
            if splits.skipped_files:
                run.log_text("".join(f"{path}\t{why}\n" for path, why in sorted(splits.skipped_files.items())),
                             "skipped_files.txt")
        run.set_tags({"resume_key": resume_dir.name})
        standard = trainer.standard_callbacks(cfg, run_dir)
        checkpoint = resume.EpochCheckpoint(resume_dir, model, optimizer, run.run_id, point, run_dir, standard)
        with lost_workers_reported(strategy):
            history = trainer.fit(cfg, model, optimizer, splits, strategy, [checkpoint, EpochLogger(run)],
                                  run_dir, initial_epoch=point.epoch if point else 0,
                                  history=point.history if point else None, standard=standard)
            metrics, evaluation = trainer.final_evaluation(cfg, model, splits, strategy)
        stop_if_requested()  # a stop asked for during the evaluation: the resume point redoes only that
        run.log_metrics(metrics, step=len(history["loss"]))
        run.log_curves(history)
        run.log_confusion_matrix(evaluation.labels, evaluation.predicted, splits.class_names)
        model_path = run_dir / "model.keras"
        model.save(model_path)
        if cfg.tracking.log_model:
            run.log_artifact(model_path)
        _print_summary(metrics, history, run, model_path)
        checkpoint.finished()  # the run is complete: the same command now starts a new one
    return metrics["eval_top1"]


def _run_dir(point: Optional[resume.ResumePoint], this_worker: Worker) -> pathlib.Path:
    if point and point.run_dir:  # a resumed run keeps writing its weights and model where it started
        return pathlib.Path(point.run_dir)
    run_dir = pathlib.Path(HydraConfig.get().runtime.output_dir)
    # A non-chief worker's weights never go over the chief's (workers may share hydra.run.dir).
    return run_dir if this_worker.chief else run_dir / f"worker{this_worker.index}"


def _continue_record(run: Run, point: resume.ResumePoint) -> None:
    """Epochs the resume point holds but the run lost (killed between saving and logging) are logged now."""
    for epoch, logs in resume.missing_epochs(run.client, run.run_id, point).items():
        run.log_metrics(logs, step=epoch)
    print(f"resuming MLflow run {run.run_id} after epoch {point.epoch}")


def _print_summary(metrics, history, run, model_path) -> None:
    final = {key: values[-1] for key, values in history.items() if key in ("loss", "top1", "val_loss", "val_top1")}
    shown = ", ".join(f"{key} {value:.4f}" for key, value in {**final, **metrics}.items())
    print(f"\n{shown}\nmodel: {model_path}")
    if run.run_id:
        print(f"MLflow run {run.run_id}; open the dashboard with:\n  {run.ui_command()}")
