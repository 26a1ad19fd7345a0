"""The comparison figure's panels: size and cost for a sweep of models, the objective against each
swept key for a sweep of hyperparameters (a log axis for learning rates and weight decay)."""

from runner.compare.plots import figure, hyperparameters, log_scaled
from runner.compare.sweep_rows import Row


def row(model="resnet18", objective=0.5, **swept):
    return Row(label=" ".join(f"{key}={value}" for key, value in swept.items()), model=model, status="FINISHED",
               run_id="id", parameters=11_000_000, gmacs=1.8, top1=objective, top5=None, top1_10crop=None,
               top1_multiscale=None, published_top1=None, epochs=1, images_per_second=None, wall_seconds=None,
               objective=objective, val_top1_curve=[(0, objective)], top1_curve=[], swept=swept)


LR_SWEEP = [row(objective=0.4, **{"optimizer.lr": "0.001", "optimizer.name": "sgd"}),
            row(objective=0.6, **{"optimizer.lr": "0.01", "optimizer.name": "adam"}),
            row(objective=0.5, **{"optimizer.lr": "0.1", "optimizer.name": "sgd"})]


def test_a_hyperparameter_sweep_plots_the_objective_against_each_swept_key():
    assert hyperparameters(LR_SWEEP) == ["optimizer.lr", "optimizer.name"]
    by_lr, by_optimizer, curves = figure(LR_SWEEP, "eval_top1").axes[:3]
    assert (by_lr.get_title(), by_lr.get_xscale(), by_lr.get_xlabel()) == (
        "eval_top1 against optimizer.lr", "log", "optimizer.lr (log scale)")
    assert sorted(by_lr.collections[0].get_offsets()[0].tolist() + by_lr.collections[1].get_offsets()[0].tolist()) \
        == [0.001, 0.01, 0.4, 0.6]
    assert [label.get_text() for label in by_optimizer.get_xticklabels()] == ["sgd", "adam"]
    assert curves.get_title().startswith("top-1 error per epoch")


def test_a_sweep_of_models_keeps_the_size_and_cost_panels():
    models = [row(model="resnet18", model_name="resnet18"), row(model="resnet34", model_name="resnet34")]
    assert hyperparameters(models) == []
    titles = [axes.get_title() for axes in figure(models, "eval_top1").axes]
    assert titles[:2] == ["top-1 against parameters", "top-1 against GMACs per image"]


def test_only_rates_and_decays_go_on_a_log_axis():
    assert log_scaled("optimizer.lr", [0.1, 0.01]) and log_scaled("optimizer.weight_decay", [1e-4, 5e-4])
    assert not log_scaled("trainer.batch_size", [32, 256]) and not log_scaled("optimizer.lr", [0.0, 0.1])
