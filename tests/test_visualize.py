"""`python -m runner.visualize`: Zeiler & Fergus figures of a real trained run, read from and logged on
a real MLflow store: which run and which model it draws, its options, and its errors in one line. The
figures themselves, in-process: tests/test_visualize_figures.py."""

import pathlib
import re

import hydra
import mlflow
import pytest

from apps import SHELL_UNSET, run_app
from helpers import CONF, new_store, png_size
from runner.mistakes.errors import UserError
from runner.tracking.artifacts import model_file, run_config
from runner.visualize import figure2, figures, filters
from runner.visualize.stored_runs import announced, find_run, open_store
from runner.visualize.visualization import visualize_model

# TensorFlow's start-up chatter on stderr, not part of what the command says.
NOISE = re.compile(r"^(I0000|W0000|E0000|WARNING: All log messages|To enable the following instructions)")


# the run, its config and its model from the store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """An empty sqlite store (creating one costs seconds of migrations: the module shares it)."""
    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return uri, mlflow.MlflowClient(uri), root


def test_the_latest_finished_run_that_is_no_sweep_is_the_default(store, tmp_path):
    uri, client, root = store
    with pytest.raises(UserError, match="no MLflow store at .*nowhere.db: train a model first"):
        open_store(f"sqlite:///{tmp_path / 'nowhere.db'}")
    experiment = client.create_experiment("latest", artifact_location=(root / "latest").as_uri())
    with pytest.raises(UserError, match=f"no finished training run in {uri}"):
        find_run(open_store(uri), None)
    older = client.create_run(experiment, start_time=1_000).info.run_id
    client.set_terminated(older, "FINISHED")
    sweep = client.create_run(experiment, start_time=2_000, tags={"runner.role": "sweep"}).info.run_id
    client.set_terminated(sweep, "FINISHED")
    bench = client.create_run(experiment, start_time=2_500, tags={"runner.role": "bench"}).info.run_id
    client.set_terminated(bench, "FINISHED")
    client.create_run(experiment, start_time=3_000)  # still RUNNING
    assert find_run(client, None).info.run_id == older  # neither a sweep's parent nor a benchmark
    with pytest.raises(UserError, match=f"visualize.model=runs:/{sweep} is a sweep run, which has no model"):
        find_run(client, sweep)
    with pytest.raises(UserError, match="visualize.model=runs:/0123abcd: no such run in sqlite:///"):
        find_run(client, "0123abcd")


def test_the_run_drawn_is_named_before_the_work_starts(store):
    _, client, root = store
    experiment = client.create_experiment("named", artifact_location=(root / "named").as_uri())
    run = client.create_run(experiment, run_name="resnet18-digits-20261207-091200",
                            start_time=1_781_524_800_000,  # 2026-06-15, noon UTC
                            tags={"model": "resnet18", "data": "digits"})
    line = announced(client.get_run(run.info.run_id))
    assert line.startswith(f"drawing MLflow run resnet18-digits-20261207-091200 ({run.info.run_id}): "
                           "model resnet18, data digits, started 2026-06-15 ")


def test_the_model_is_the_logged_artifact_else_the_file_in_the_run_folder(store, tmp_path):
    _, client, root = store
    experiment = client.create_experiment("model", artifact_location=(root / "model").as_uri())
    run_folder = tmp_path / "run"
    run = client.create_run(experiment, tags={"hydra.output_dir": str(run_folder)})
    run_id = run.info.run_id
    client.log_text(run_id, "model:\n  name: lenet\n", "config.yaml")
    assert run_config(client, run).model.name == "lenet"

    with pytest.raises(UserError) as missing:
        model_file(client, run, str(tmp_path / "downloads"))
    message = str(missing.value)
    assert "\n" not in message and run_id in message and str(run_folder / "model.keras") in message
    assert "tracking.log_model=true" in message and "on the machine that trained it" in message

    run_folder.mkdir()
    (run_folder / "model.keras").write_bytes(b"local")
    assert model_file(client, run, str(tmp_path / "downloads")) == run_folder / "model.keras"

    logged = tmp_path / "logged" / "model.keras"
    logged.parent.mkdir()
    logged.write_bytes(b"logged")
    client.log_artifact(run_id, str(logged))
    assert model_file(client, run, str(tmp_path / "downloads")).read_bytes() == b"logged"


# a real LeNet trained on digits, end to end


def command(app: str, cwd: pathlib.Path, *overrides: str):
    """`python -m <app> overrides` in this process, without a store or an error mode the developer's shell may set."""
    return run_app(app, *overrides, cwd=cwd, env=SHELL_UNSET)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(store uri, run id, folder) of a LeNet trained for 5 steps on digits, in a store of its own; run
    in that folder, which holds its resume point (outputs/resume under where it runs) too."""
    root = tmp_path_factory.mktemp("visualize")
    uri = new_store(root)
    result = command("runner", root, "trainer.epochs=1", "trainer.steps_per_epoch=5", "trainer.jit_compile=false",
                     f"tracking.uri={uri}", f"hydra.run.dir={root / 'run'}")
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([experiment.experiment_id for experiment in client.search_experiments()])
    return uri, run.info.run_id, root


def visualize_command(uri: str, cwd: pathlib.Path, *overrides: str):
    return command("runner.visualize", cwd, f"tracking.uri={uri}", *overrides)


def logged_sizes(client: mlflow.MlflowClient, run_id: str, folder: pathlib.Path) -> dict[str, tuple[int, int]]:
    """Every PNG logged under visualize/, downloaded and read back: {name: (width, height)}."""
    names = [artifact.path for artifact in client.list_artifacts(run_id, "visualize")]
    return {pathlib.Path(name).name: png_size(client.download_artifacts(run_id, name, str(folder)))
            for name in names}


@pytest.mark.e2e
def test_the_command_draws_the_latest_run_and_logs_the_figures_on_it(trained, tmp_path):
    uri, run_id, _ = trained
    result = visualize_command(uri, tmp_path)  # every default: the latest run, its default rows
    assert result.returncode == 0, result.stderr[-3000:]
    named = re.search(rf"^drawing MLflow run lenet-digits-\S+ \({run_id}\): model lenet, data digits", result.stdout,
                      re.MULTILINE)
    assert named and named.start() < result.stdout.index("wrote ")  # said before the work, not after
    # LeNet's defaults: c1 (28x28x6), c3 (10x10x16), s4 (5x5x16, the last spatial row, also the top row).
    expected = {"filters.png": filters.panel_size(6, 5, 5),  # 6 filters 5x5x1: 2 lines of 3, 800 px wide
                "feature_maps_c1.png": figures.grid_size(8, 1 + 6),
                "feature_maps_c3.png": figures.grid_size(8, 1 + 16),
                "feature_maps_s4.png": figures.grid_size(8, 1 + 16),
                "top_images_s4.png": figures.grid_size(8, 6),
                "projections_s4.png": figures.grid_size(8, 4),
                "figure2_s4.png": figures.grid_size(8, 2 * 9, figure2.TILE),
                # Grad-CAM at the last convolution row, c3 (s4 is a pooling row); the occlusion of the 8 images
                "gradcam_c3.png": figures.grid_size(8, 5, footer=figures.CAPTION),
                "occlusion.png": figures.grid_size(8, 3, footer=figures.CAPTION)}
    written = sorted((tmp_path / "outputs" / "visualize").glob("*/*/*.png"))
    assert sorted(path.name for path in written) == sorted(expected)
    for path in written:
        assert f"wrote {path}  (artifact visualize/{path.name})" in result.stdout
    assert f"logged on MLflow run {run_id}" in result.stdout
    assert "tanh" in result.stdout  # says LeNet's activations were rectified with the generalised rules
    client = mlflow.MlflowClient(uri)
    assert expected.items() <= logged_sizes(client, run_id, tmp_path / "downloads").items()
    assert len(client.search_runs([e.experiment_id for e in client.search_experiments()])) == 1, "no run of its own"


@pytest.mark.e2e
def test_a_model_file_is_drawn_as_its_weights_on_the_model_its_card_names(trained, tmp_path):
    uri, run_id, root = trained
    file = root / "run" / "model.keras"
    with hydra.initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = hydra.compose("visualize", overrides=[f"tracking.uri={uri}", f"visualize.model={file}",
                                                    "visualize.rows=[c1]", "visualize.top_row=c1",
                                                    "visualize.max_images=40"])
    result = visualize_model(cfg, tmp_path / "out")
    assert result.run_id != run_id  # weights' figures: a run of their own
    client = mlflow.MlflowClient(uri)
    drawn = client.get_run(result.run_id)
    assert (drawn.data.tags["runner.role"], drawn.data.params["weights.kind"]) == ("visualize", "file")
    assert drawn.data.params["weights.source"] == str(file)
    wrong_model = cfg.copy()
    wrong_model.model.name = "vgg16"
    with pytest.raises(UserError, match=f"^visualize.model={file} holds lenet, not model=vgg16: add model=lenet"):
        visualize_model(wrong_model, tmp_path / "refused")


@pytest.mark.e2e
def test_the_options_choose_rows_channels_and_images(trained, tmp_path):
    uri, run_id, _ = trained
    with hydra.initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = hydra.compose("visualize", overrides=[
            f"tracking.uri={uri}", f"visualize.model=runs:/{run_id}", "visualize.rows=[c3]", "visualize.top_row=c1",
            "visualize.images=3", "visualize.gradcam_row=c1", "visualize.occlusion_size=0.5",
            "visualize.feature_channels=4", "visualize.channels=2", "visualize.top_k=5", "visualize.max_images=40"])
    result = visualize_model(cfg, tmp_path / "out")
    assert {path.name: png_size(path) for path in result.paths} == {
        "filters.png": filters.panel_size(6, 5, 5),
        "feature_maps_c3.png": figures.grid_size(3, 1 + 4),
        "top_images_c1.png": figures.grid_size(2, 5),
        "projections_c1.png": figures.grid_size(3, 4),
        "figure2_c1.png": figures.grid_size(2, 2 * 9, figure2.TILE),
        "gradcam_c1.png": figures.grid_size(3, 5, footer=figures.CAPTION),
        "occlusion.png": figures.grid_size(3, 3, footer=figures.CAPTION)}
    assert result.artifacts == [f"visualize/{path.name}" for path in result.paths]
    logged = logged_sizes(mlflow.MlflowClient(uri), run_id, tmp_path / "downloads")
    assert logged["top_images_c1.png"] == figures.grid_size(2, 5)

    not_spatial = cfg.copy()
    not_spatial.visualize.rows = ["c5"]
    with pytest.raises(UserError, match="visualize.rows: c5 gives a 120 vector, not feature maps; "
                                        "spatial rows: c1, s2, c3, s4"):
        visualize_model(not_spatial, tmp_path / "out")
    not_spatial.visualize.rows = ["c9"]
    with pytest.raises(UserError, match="visualize.rows: the model has no row or layer 'c9'; spatial rows: c1, s2"):
        visualize_model(not_spatial, tmp_path / "out")
    not_spatial.visualize.rows = None
    not_spatial.visualize.gradcam_row = "f6"
    with pytest.raises(UserError, match=r"^visualize.gradcam_row: f6 gives a 84 vector \(after global pooling or "
                                        r"flattening\), not feature maps; rows: c1, s2, c3, s4$"):
        visualize_model(not_spatial, tmp_path / "out")
    not_spatial.visualize.gradcam_row, not_spatial.visualize.occlusion_stride = None, 2.0
    with pytest.raises(UserError, match=r"^visualize.occlusion_stride=2.0: expected a fraction"):
        visualize_model(not_spatial, tmp_path / "out")


@pytest.mark.e2e
def test_an_unknown_run_is_one_line_and_exit_status_2(trained):
    uri, _, root = trained
    result = visualize_command(uri, root, "visualize.model=runs:/0123abcd")
    said = [line for line in result.stderr.splitlines() if line.strip() and not NOISE.match(line)]
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(said) == 1, said
    assert said[0].startswith("error: visualize.model=runs:/0123abcd: no such run in sqlite:///"), said
