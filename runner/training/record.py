"""What a training run records in MLflow at its start and at its end (the epochs in between are
the loop's recorder hook, runner/training/loop.py)."""

import pathlib
import socket

import mlflow
from mlflow.utils.file_utils import local_file_uri_to_path
from mlflow.utils.uri import is_local_uri

from runner.architecture.picture import drawn_file
from runner.architecture.tables import model_spec, render
from runner.data import balance, unreadable
from runner.data.splits import evaluation_crop
from runner.session.parts import ModelPart, Session
from runner.tracking.run import NotRecorded, Run
from runner.tracking.supersede import end_superseded
from runner.training import resume
from runner.training.evaluation import Evaluation, FinalEvaluation, mistakes
from runner.training.loop import Trained
from runner.weights import saved
from runner.weights.card import Provenance, WeightsCard
from runner.weights.reference import OURS, RUNS_PREFIX


def recorder(session: Session, start: resume.Start) -> Run | NotRecorded:
    """Under multi_worker every worker trains and evaluates (their collectives wait for each other);
    only the chief records: one MLflow run, whose files the others write to their own folders."""
    if not session.worker.chief:
        return NotRecorded(session.worker.index)
    if start.run_id:
        return ContinuedRun(session.cfg, resume_run_id=start.run_id, resumable=True)
    return Run(session.cfg, resumable=True)


class ContinuedRun(Run):
    """A resumed run: it logs only the points its record does not hold yet (an epoch redone from the
    checkpoint before a damaged one, the final metrics of a run whose end failed after logging them),
    so no metric has two values at one step; and when it finishes, the reason it failed before goes."""

    def __enter__(self) -> "ContinuedRun":
        super().__enter__()
        try:
            self._held = _logged_points(self.client, self.run_id)
        except BaseException as error:
            self.__exit__(type(error), error, error.__traceback__)
            raise
        return self

    def log_metrics(self, metrics: dict[str, float | None], step: int) -> None:
        super().log_metrics({key: value for key, value in metrics.items() if (key, step) not in self._held}, step)

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc_type is None:
            try:
                self._forget_failure()
            except BaseException as error:  # the run still ends, FAILED with this reason
                super().__exit__(type(error), error, error.__traceback__)
                raise
        return super().__exit__(exc_type, exc, traceback)

    def _forget_failure(self) -> None:
        if "failure_reason" in self.client.get_run(self.run_id).data.tags:
            self.client.delete_tag(self.run_id, "failure_reason")


def _logged_points(client, run_id: str) -> set[tuple[str, int]]:
    """(metric, step) of every point the run holds; not the system metrics, which a run never relogs."""
    keys = [key for key in client.get_run(run_id).data.metrics if not key.startswith("system/")]
    return {(key, metric.step) for key in keys for metric in client.get_metric_history(run_id, key)}


def record_start(run: Run | NotRecorded, session: Session, start: resume.Start) -> None:
    """A new run's settings, size and architecture; a resumed run's epochs that its record lost."""
    if start.resumed:
        if session.worker.chief:
            for epoch, logs in resume.missing_epochs(run.client, start).items():  # killed between save and log
                run.log_metrics(logs, step=epoch)
            print(f"resuming MLflow run {run.run_id} after epoch {start.epoch}")
    else:
        run.log_params(session.part.recorded_params())
        # As metrics, so the dashboard can sort and chart runs by size and cost.
        skipped = session.splits.skipped_files
        size = session.part.report
        run.log_metrics({"parameters": size.total_params, "gmacs": size.inference_macs / 1e9,
                         "data_skipped_files": len(skipped)}, step=0)
        run.log_text(render(session.part.report, "markdown"), "architecture.md")
        with drawn_file(session.part.report, model_spec(session.part.cfg)) as drawing:
            run.log_artifact(drawing)
        record_weights(run, session.part)
        if skipped:
            run.log_text(unreadable.as_tsv(skipped), "skipped_files.txt")
    # The folder too: only a run of this very folder can have been abandoned by its lock's last holder.
    point = {"resume_key": start.key, "resume_folder": f"{socket.gethostname()}:{start.directory.resolve()}"}
    run.set_tags(point)
    if session.worker.chief:
        for superseded in end_superseded(run.client, run.run_id, point):
            print(f"ended abandoned MLflow run {superseded} as KILLED, superseded by this run")


def record_end(run: Run | NotRecorded, session: Session, trained: Trained, final: FinalEvaluation,
               run_dir: pathlib.Path) -> None:
    """The final metrics, the curves and confusion matrix, and the saved model."""
    run.log_metrics(final.metrics, step=len(trained.history["loss"]))
    run.log_curves(trained.history)
    record_evaluation(run, session, final.centre)
    model_path = run_dir / "model.keras"
    model = saved.save(model_path, session.model, saved_card(session, run.run_id))  # 0-255 images in, probabilities out
    tracking = session.cfg.tracking
    if tracking.log_model or tracking.register_model:
        run.log_artifact(model_path)
        run.log_model(model, tracking.register_model)
    _print_summary(final.metrics, trained.history, run, model_path)


def saved_card(session: Session, run_id: str | None) -> WeightsCard:
    """The card of the model a run saves: what it takes, what it predicts, how it was made; the
    licence of the weights it started from, which binds what was trained from them."""
    part, splits = session.part, session.splits
    reference = f"{RUNS_PREFIX}{run_id}" if run_id else ""
    describes = f"run {run_id}" if run_id else f"worker {session.worker.index}'s copy of a multi-worker run's model"
    return WeightsCard(kind="run", reference=reference, describes=describes, architecture=part.cfg.model.name,
                       layout=OURS, preprocessing=part.preprocessing, resize_ratio=evaluation_crop(part.cfg),
                       class_names=tuple(splits.class_names),
                       class_ids=tuple(splits.class_ids) if splits.class_ids != splits.class_names else None,
                       classifier=part.classifier, licence=part.card.licence if part.card else None,
                       lrn=part.card.lrn if part.card else None,
                       provenance=Provenance.now(run_id))


def record_weights(run: Run | NotRecorded, part: ModelPart) -> None:
    """With model.weights: their card, and what of them landed where (weights.txt)."""
    if part.loaded:
        run.log_text(f"{part.card.text()}\n{part.loaded.summary()}", "weights.txt")


def record_evaluation(run: Run | NotRecorded, session: Session, centre: Evaluation) -> None:
    """A centre-crop pass's confusion matrix, per-class figures and most confident mistakes."""
    cfg, splits = session.cfg, session.splits
    training = (balance.training_shares(cfg.data.sampling, session.training.loss.class_weights,
                                        splits.class_counts) if splits.class_counts else {})
    run.log_confusion_matrix(centre.labels, centre.predicted, splits.class_names, training)
    if session.worker.chief:  # the others record nothing: spare them the pass over the images
        run.log_mistakes(*mistakes(session, centre))


def _print_summary(metrics, history, run, model_path) -> None:
    final = {key: values[-1] for key, values in history.items() if key in ("loss", "top1", "val_loss", "val_top1")}
    shown = ", ".join(f"{key} {value:.4f}" for key, value in {**final, **metrics}.items())
    print(f"\n{shown}\nmodel: {model_path}")
    if run.run_id:
        print(f"figures and artifacts: {artifacts_location(run.client, run.run_id)}")
        print(f"MLflow run {run.run_id}; open the dashboard with:\n  {run.ui_command()}")


def artifacts_location(client: mlflow.MlflowClient, run_id: str) -> str:
    """Where the run's figures, report and model are: a folder on this machine when the store keeps its
    artifacts in files (the default sqlite store's outputs/mlartifacts/), else the store's URI for them."""
    uri = client.get_run(run_id).info.artifact_uri
    return local_file_uri_to_path(uri) if is_local_uri(uri) else uri
