"""`python -m runner.visualize`: Zeiler & Fergus figures of a real trained run, read from and logged on
a real MLflow store; guided backpropagation against a hand computation; every figure of the zoo's
nested models (ResNet, GoogLeNet) built in-process."""

import pathlib
import re

import hydra
import keras
import matplotlib.image
import mlflow
import numpy as np
import pytest

import builders
from apps import SHELL_UNSET, run_app
from helpers import CONF, REPO, compose, new_store
from runner.training.model_report import model_spec
from runner.errors import UserError
from runner.visualize import figure2, figures, filters, guided
from runner.visualize.render import Options, visualize
from runner.visualize.rows import default_rows, model_rows, pick
from runner.visualize.run import visualize_model
from runner.tracking.artifacts import model_file, run_config
from runner.visualize.source import find_run, open_store

# TensorFlow's start-up chatter on stderr, not part of what the command says.
NOISE = re.compile(r"^(I0000|W0000|E0000|WARNING: All log messages|To enable the following instructions)")


def png_size(path) -> tuple[int, int]:
    """(width, height) of a PNG, read back as pixels."""
    height, width = matplotlib.image.imread(path).shape[:2]
    return width, height


# guided backpropagation


def reference_gradients(layers, x, channel, *, guided_rule):
    """d a_L[channel] / dx through dense layers [(W, b, f, f')], by hand; with guided_rule, every
    activation passes back only the positive part of its incoming gradient (Springenberg et al.)."""
    inputs, pre_activations = [], []
    a = x
    for weights, bias, f, _ in layers:
        inputs.append(a)
        pre_activations.append(a @ weights + bias)
        a = f(pre_activations[-1])
    g = np.zeros_like(a)
    g[:, channel] = 1.0
    for (weights, _, _, derivative), z in zip(reversed(layers), reversed(pre_activations)):
        g = (np.maximum(g, 0) if guided_rule else g) * derivative(z)
        g = g @ weights.T
    return g


def relu_net(rng):
    """Three ReLUs in the three forms a saved model can hold them: inside Conv2D, a ReLU layer, an Activation layer."""
    inputs = keras.Input((1, 1, 3))
    x = keras.layers.Conv2D(5, 1, activation="relu", name="c1")(inputs)
    x = keras.layers.ReLU(name="r2")(keras.layers.Conv2D(4, 1, name="c2")(x))
    x = keras.layers.Activation("relu", name="a3")(keras.layers.Conv2D(2, 1, name="c3")(x))
    model = keras.Model(inputs, x)
    relu, step = (lambda z: np.maximum(z, 0)), (lambda z: (z > 0).astype(np.float32))
    layers = []
    for name, (fan_in, fan_out) in zip(("c1", "c2", "c3"), ((3, 5), (5, 4), (4, 2))):
        weights, bias = rng.normal(size=(fan_in, fan_out)), rng.normal(size=fan_out) * 0.3
        model.get_layer(name).set_weights([weights.reshape(1, 1, fan_in, fan_out), bias])
        layers.append((weights, bias, relu, step))
    return model, layers, {"relu": 3}


def tanh_net(rng):
    """LeNet's kind: tanh inside the convolutions."""
    inputs = keras.Input((1, 1, 3))
    x = keras.layers.Conv2D(4, 1, activation="tanh", name="c1")(inputs)
    x = keras.layers.Conv2D(2, 1, activation="tanh", name="c2")(x)
    model = keras.Model(inputs, x)
    layers = []
    for name, (fan_in, fan_out) in zip(("c1", "c2"), ((3, 4), (4, 2))):
        weights, bias = rng.normal(size=(fan_in, fan_out)), rng.normal(size=fan_out) * 0.3
        model.get_layer(name).set_weights([weights.reshape(1, 1, fan_in, fan_out), bias])
        layers.append((weights, bias, np.tanh, lambda z: 1 - np.tanh(z) ** 2))
    return model, layers, {"tanh": 2}


@pytest.mark.parametrize("net", [relu_net, tanh_net])
def test_guided_backprop_equals_the_hand_computed_guided_gradient(net):
    rng = np.random.default_rng(0)
    model, layers, kinds = net(rng)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    images = x.reshape(64, 1, 1, 3)
    plain = guided.input_gradients(model, images, channel=0).reshape(64, 3)
    guided_gradient, counts = guided.guided_gradients(model, images, channel=0)
    guided_gradient = guided_gradient.reshape(64, 3)

    assert dict(counts) == kinds
    np.testing.assert_allclose(plain, reference_gradients(layers, x, 0, guided_rule=False), rtol=1e-4, atol=1e-5)
    expected = reference_gradients(layers, x, 0, guided_rule=True)
    np.testing.assert_allclose(guided_gradient, expected, rtol=1e-4, atol=1e-5)
    differ = ~np.isclose(guided_gradient, plain, atol=1e-5).all(axis=1)
    assert differ.sum() >= 10, "negative gradients must be cut off on the way back, changing many images' gradients"
    # Everything is put back: the plain gradient afterwards is the plain gradient before.
    np.testing.assert_allclose(guided.input_gradients(model, images, channel=0).reshape(64, 3), plain)
    assert model.get_layer("c1").activation in (keras.activations.relu, keras.activations.tanh)
    assert all("call" not in vars(layer) for layer in model.layers)


# the zoo's nested models, built here without training


@pytest.mark.parametrize(("name", "size", "default_rows_expected"), [
    ("resnet18", 64, ["conv1", "conv3_block2", "conv5_block2"]),  # the last is Grad-CAM's default row too
    ("googlenet", 96, ["conv1", "inception_4b", "inception_5b"]),
])
def test_every_figure_of_a_nested_zoo_model(name, size, default_rows_expected, tmp_path):
    spec = model_spec(compose(f"model={name}", "data=imagenette", f"model.input_shape=[{size},{size},3]"))
    keras.utils.set_random_seed(0)
    built = builders.build(spec)
    model = built.model
    rows = model_rows(model, spec)
    # Each row's output layer is the one whose tensor the builder returned for the row.
    main_path = [applied for applied in built.rows if not applied.application.block.side_output]
    assert [row.name for row in rows] == [applied.application.name for applied in main_path]
    assert all(row.layer.output is applied.output for row, applied in zip(rows, main_path))
    assert [row.name for row in default_rows(rows)] == default_rows_expected
    inner = {"resnet18": "conv3_block1_1_conv", "googlenet": "inception_4b_5x5_relu"}[name]  # a layer inside a row
    assert pick(rows, inner, "visualize.rows", model).layer is model.get_layer(inner)

    rng = np.random.default_rng(0)
    batches = [(rng.integers(0, 256, size=(4, size, size, 3), dtype=np.uint8), np.arange(4) % 2) for _ in range(3)]

    def normalise(images):  # as the pipeline's normaliser: uint8 in, about zero mean and unit spread out
        return (np.asarray(images, np.float32) - 127.5) / 64

    options = Options(images=2, feature_channels=4, channels=3, top_k=4, max_images=10)
    paths, notes = visualize(model, spec, batches, ["tench", "springer"], normalise, options, tmp_path)
    last = default_rows_expected[-1]
    expected = {"filters.png": filters.panel_size(64, 7, 7),  # conv1: 64 filters 7x7x3
                **{f"feature_maps_{row}.png": figures.grid_size(2, 1 + 4) for row in default_rows_expected},
                f"top_images_{last}.png": figures.grid_size(3, 4),
                f"projections_{last}.png": figures.grid_size(2, 4),
                f"figure2_{last}.png": figures.grid_size(3, 2 * 9, figure2.TILE),  # 9 of the 12 images
                f"gradcam_{last}.png": figures.grid_size(2, 5, footer=figures.CAPTION),
                "occlusion.png": figures.grid_size(2, 3, footer=figures.CAPTION)}
    assert {path.name: png_size(path) for path in paths} == expected
    # Only ReLUs to guide; the deconvnet's note on GoogLeNet's two LRN layers, passed down unchanged.
    lrn_notes = [] if name == "resnet18" else ["deconvnet: 2 LRN layer(s) passed the reconstruction down unchanged, "
                                               "as the paper's deconvnet has no normalisation"]
    assert notes == lrn_notes

    probe = keras.Model(model.inputs[0], [row for row in rows if row.spatial][-1].layer.output)
    images = normalise(batches[0][0])
    channel = int(np.argmax(keras.ops.convert_to_numpy(probe(images)).max(axis=(0, 1, 2))))  # a live one
    plain = guided.input_gradients(probe, images, channel)
    guided_gradient, counts = guided.guided_gradients(probe, images, channel)
    relus = [layer for layer in probe.layers if getattr(layer, "activation", None) is keras.activations.relu]
    assert dict(counts) == {"relu": len(relus)} and len(relus) > 10
    assert not np.allclose(plain, guided_gradient)


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
    """(store uri, run id, folder) of a LeNet trained for 5 steps on digits, in a store of its own."""
    root = tmp_path_factory.mktemp("visualize")
    uri = new_store(root)
    result = command("runner", REPO, "trainer.epochs=1", "trainer.steps_per_epoch=5", "trainer.jit_compile=false",
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


@pytest.mark.slow
def test_the_command_draws_the_latest_run_and_logs_the_figures_on_it(trained, tmp_path):
    uri, run_id, _ = trained
    result = visualize_command(uri, tmp_path)  # every default: the latest run, its default rows
    assert result.returncode == 0, result.stderr[-3000:]
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_an_unknown_run_is_one_line_and_exit_status_2(trained):
    uri, _, root = trained
    result = visualize_command(uri, root, "visualize.model=runs:/0123abcd")
    said = [line for line in result.stderr.splitlines() if line.strip() and not NOISE.match(line)]
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(said) == 1, said
    assert said[0].startswith("error: visualize.model=runs:/0123abcd: no such run in sqlite:///"), said
