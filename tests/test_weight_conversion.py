"""runner.weights: reading weights files, and placing their tensors on our models as a layout says, or
failing with one line that names both sides (the source's tensor and shape, our weight and shape);
every check before any tensor is read, then one tensor read and assigned at a time."""

import h5py
import keras
import numpy as np
import pytest
from safetensors.numpy import save_file

import builders
import reference_resnet
from builders.model import SPEC_KEYS
from helpers import compose
from runner.architecture.tables import model_spec
from runner.mistakes.errors import UserError
from runner.weights import tensors
from runner.weights.card import WeightsCard
from runner.weights.convert import assign, head_fits, head_layers
from runner.weights.layouts import fill
from runner.weights.load import load_into
from runner.weights.reference import Source
from runner.weights.tensor_map import Tensors

VGG11 = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]  # torchvision's cfgs["A"]
VGG13 = [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]  # cfgs["B"]


def zoo_built(name: str, size: int = 32, *overrides: str) -> builders.BuiltModel:
    spec = model_spec(compose(f"model={name}", "data=imagenet", f"model.input_shape=[{size},{size},3]", *overrides))
    return builders.build({key: value for key, value in spec.items() if key in SPEC_KEYS})


def zoo_model(name: str, size: int = 32, *overrides: str) -> keras.Model:
    return zoo_built(name, size, *overrides).model


def source(path, layout: str) -> Source:
    return Source(path, WeightsCard(kind="file", reference=str(path), describes=f"the file {path}",
                                    architecture="", layout=layout, preprocessing=None))


def value(model: keras.Model, path: str) -> np.ndarray:
    return next(np.asarray(variable) for variable in model.weights if variable.path == path)


@pytest.fixture(scope="module")
def state():
    return reference_resnet.random_state_dict(18)


def test_resnet_tensors_land_on_our_weights_in_keras_layouts(state):
    model = zoo_model("resnet18")
    loaded = assign(model, state, "torchvision_resnet")
    assert sorted(loaded.loaded) == sorted(variable.path for variable in model.weights) and not loaded.fresh
    np.testing.assert_array_equal(value(model, "conv1_conv/kernel"), state["conv1.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(value(model, "conv3_block1_0_bn/moving_variance"),
                                  state["layer2.0.downsample.1.running_var"])
    np.testing.assert_array_equal(value(model, "conv5_block2_2_bn/gamma"), state["layer4.1.bn2.weight"])
    np.testing.assert_array_equal(value(model, "fc/kernel"), state["fc.weight"].T)
    assert "conv1_conv/kernel (7, 7, 3, 64) <- conv1.weight (64, 3, 7, 7)" in loaded.summary()


def test_num_batches_tracked_is_ignored(state):
    loaded = assign(zoo_model("resnet18"), state, "torchvision_resnet")
    assert sorted(loaded.ignored) == sorted(key for key in state if key.endswith("num_batches_tracked"))
    assert len(loaded.ignored) == 20  # one per batch norm of ResNet-18


def test_a_source_tensor_the_layout_does_not_place_is_an_error(state):
    with pytest.raises(UserError, match=r"source tensors extra\.weight \(3,\) match no row of layout "
                                        r"torchvision_resnet.*model resnet18"):
        assign(zoo_model("resnet18"), {**state, "extra.weight": np.zeros(3, np.float32)}, "torchvision_resnet")
    with pytest.raises(UserError, match=r"layer3\.5\.conv1\.weight \(256, 256, 3, 3\) goes to our layer "
                                        r"conv4_block6_1_conv, which model resnet18 does not have"):
        assign(zoo_model("resnet18"), {**state, "layer3.5.conv1.weight": state["layer3.1.conv1.weight"]},
               "torchvision_resnet")
    with pytest.raises(UserError, match=r"source tensors conv1\.weight \(64, 3, 7, 7\), bn1\.weight .* match no row "
                                        r"of layout torchvision_vgg"):
        assign(zoo_model("vgg11"), state, "torchvision_vgg")


def test_a_weight_of_ours_no_source_tensor_sets_is_an_error(state):
    partial = {key: array for key, array in state.items() if key != "layer2.0.bn1.running_var"}
    with pytest.raises(UserError, match=r"our weights conv3_block1_1_bn/moving_variance \(128,\) \(the layer's "
                                        r"other weights: layer2\.0\.bn1\) of model resnet18"):
        assign(zoo_model("resnet18"), partial, "torchvision_resnet")


def test_a_shape_that_disagrees_is_an_error_and_sets_nothing(state):
    model = zoo_model("resnet18")
    before = value(model, "conv1_conv/kernel")
    wrong = {**state, "layer1.0.conv1.weight": np.zeros((64, 64, 1, 1), np.float32)}
    with pytest.raises(UserError, match=r"source tensor layer1\.0\.conv1\.weight \(64, 64, 1, 1\) .*does not fit "
                                        r"our conv2_block1_1_conv/kernel \(3, 3, 64, 64\)"):
        assign(model, wrong, "torchvision_resnet")
    np.testing.assert_array_equal(value(model, "conv1_conv/kernel"), before)


def test_another_number_of_classes_needs_a_new_head(state):
    with pytest.raises(UserError, match=r"fc\.weight \(1000, 512\) .*does not fit our fc/kernel \(512, 10\)"):
        assign(zoo_model("resnet18", 32, "data.num_classes=10"), state, "torchvision_resnet")


def test_new_head_loads_all_but_the_classifier(state):
    model = zoo_model("resnet18", 32, "data.num_classes=10")
    head = value(model, "fc/kernel")
    assert not head_fits(model, state, "torchvision_resnet", ("fc",))
    loaded = assign(model, state, "torchvision_resnet", head=head_layers(model, ("fc",)))
    assert loaded.fresh == ["fc/kernel", "fc/bias"] and loaded.left_out == ["fc.weight", "fc.bias"]
    assert len(loaded.loaded) == len(model.weights) - 2
    np.testing.assert_array_equal(value(model, "fc/kernel"), head)
    np.testing.assert_array_equal(value(model, "conv5_block2_2_conv/kernel"),
                                  state["layer4.1.conv2.weight"].transpose(2, 3, 1, 0))
    assert "fc/kernel (512, 10)" in loaded.summary() and "fc.weight (1000, 512)" in loaded.summary()


def test_the_head_is_the_layers_of_the_classifier_rows():
    # GoogLeNet's aux_classifier names its layers after its row (builders/inception.py), as every block does.
    model = zoo_model("googlenet", 96)
    aux1 = {"aux1_pool", "aux1_proj_conv", "aux1_proj_relu", "aux1_flatten", "aux1_fc", "aux1_dropout", "aux1_logits"}
    assert head_layers(model, ("classifier", "aux1")) == {"classifier"} | aux1
    assert head_layers(zoo_model("vgg11"), ("fc8",)) == {"fc8"}


def test_checks_read_no_tensor_and_loading_reads_each_once(state):
    reads = []

    def read(key):
        reads.append(key)
        return state[key]

    shapes = {key: array.shape for key, array in state.items()}
    model = zoo_model("resnet18")
    with pytest.raises(UserError, match=r"layer1\.0\.conv1\.weight \(64, 64, 1, 1\) .*does not fit"):
        assign(model, Tensors({**shapes, "layer1.0.conv1.weight": (64, 64, 1, 1)}, read), "torchvision_resnet")
    assert head_fits(model, Tensors(shapes, read), "torchvision_resnet", ("fc",)) and not reads
    loaded = assign(model, Tensors(shapes, read), "torchvision_resnet")
    assert reads == [placement.source for placement in loaded.placements]
    assert sorted(reads) == sorted(key for key in state if not key.endswith("num_batches_tracked"))


def test_a_file_loads_with_a_new_head_where_its_classes_differ(tmp_path, state):
    save_file(state, str(tmp_path / "resnet18.safetensors"))
    built = zoo_built("resnet18", 32, "data.num_classes=10")
    loaded = load_into(built, source(tmp_path / "resnet18.safetensors", "torchvision_resnet"), ("fc",))
    # safetensors keeps a file's keys sorted
    assert loaded.fresh == ["fc/kernel", "fc/bias"] and loaded.left_out == ["fc.bias", "fc.weight"]
    np.testing.assert_array_equal(value(built.model, "conv1_conv/kernel"), state["conv1.weight"].transpose(2, 3, 1, 0))


@pytest.mark.parametrize("name", ["model.keras", "model.weights.h5"])
def test_a_model_of_ours_loads_by_layer_name(tmp_path, name):
    trained = zoo_model("lenet")
    if name.endswith(".keras"):
        trained.save(tmp_path / name)
    else:
        trained.save_weights(tmp_path / name)
    built = zoo_built("lenet", 32, "data.num_classes=10")
    loaded = load_into(built, source(tmp_path / name, "ours"), ("output",))
    assert loaded.fresh == ["output/kernel", "output/bias"] and loaded.left_out == ["output/kernel", "output/bias"]
    for path in ("c1_conv/kernel", "c5/kernel", "f6/bias"):
        np.testing.assert_array_equal(value(built.model, path), value(trained, path))
    (tmp_path / "other.keras").write_bytes(b"not a zip")
    with pytest.raises(UserError, match=r"weights file .*other\.keras is not a model saved by Keras 3"):
        load_into(built, source(tmp_path / "other.keras", "ours"), ("output",))


def test_batch_norm_epsilon_must_be_the_sources(state):
    model = zoo_model("resnet18")
    model.get_layer("conv2_block1_1_bn").epsilon = 1e-3
    with pytest.raises(UserError, match=r"our layer conv2_block1_1_bn has batch-norm epsilon 0\.001, the source "
                                        r"\(layout torchvision_resnet\) 1e-05"):
        assign(model, state, "torchvision_resnet")


def test_unknown_layout():
    with pytest.raises(UserError, match="unknown weights layout 'caffe'; valid: torchvision_resnet, "):
        assign(zoo_model("resnet18"), {}, "caffe")


def torchvision_vgg(config: list, size: int, rng) -> dict[str, np.ndarray]:
    """A random torchvision VGG state dict for a size x size input (no adaptive pool: fc6 reads our map)."""
    state, index, channels = {}, 0, 3
    for item in config:
        if item == "M":
            index += 1
            continue
        state[f"features.{index}.weight"] = rng.standard_normal((item, channels, 3, 3)).astype(np.float32)
        state[f"features.{index}.bias"] = rng.standard_normal(item).astype(np.float32)
        index, channels = index + 2, item
    side = size // 32
    for name, shape in (("0", (4096, channels * side * side)), ("3", (4096, 4096)), ("6", (1000, 4096))):
        state[f"classifier.{name}.weight"] = rng.standard_normal(shape).astype(np.float32)
        state[f"classifier.{name}.bias"] = rng.standard_normal(shape[0]).astype(np.float32)
    return state


def test_vgg_convs_pair_with_torchvisions_sequential_indices_in_order():
    state = torchvision_vgg(VGG11, 32, np.random.default_rng(0))
    model = zoo_model("vgg11")
    assign(model, state, "torchvision_vgg")
    # cfgs["A"]: conv 0, relu 1, pool 2, conv 3: our second conv row.
    np.testing.assert_array_equal(value(model, "conv2_1_conv/kernel"), state["features.3.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(value(model, "conv5_block2_conv/bias"), state["features.18.bias"])
    with pytest.raises(UserError, match=r"the source has 8 modules features\.0, features\.3, .* and 3 more, "
                                        r"model vgg13 10 layers conv1_block1_conv, .*pairs one to one"):
        assign(zoo_model("vgg13"), state, "torchvision_vgg")


def test_fill_shifts_indices():
    assert fill("conv{s+1}_block{i+1}_{k}_conv", {"s": "2", "i": "0", "k": "3"}) == "conv3_block1_3_conv"


def write_h5(path, layers: dict[str, dict[str, np.ndarray]], *, root: str | None = None, chunked: bool = False):
    with h5py.File(path, "w") as handle:
        group = handle.create_group(root) if root else handle
        names = [name.encode() for name in layers]
        if chunked:  # as Keras writes a list past HDF5's 64 KiB attribute limit
            group.attrs["layer_names0"], group.attrs["layer_names1"] = names[:1], names[1:]
        else:
            group.attrs["layer_names"] = names
        for layer, weights in layers.items():
            layer_group = group.create_group(layer)
            layer_group.attrs["weight_names"] = [name.encode() for name in weights]
            for name, array in weights.items():
                layer_group.create_dataset(name, data=array)


@pytest.mark.parametrize("naming, options", [
    ({"W": "block1_conv1_W_1:0", "b": "block1_conv1_b_1:0"}, {}),  # Keras 1: the published VGG files
    ({"W": "block1_conv1/kernel:0", "b": "block1_conv1/bias:0"}, {"chunked": True}),  # Keras 2
    ({"W": "block1_conv1/kernel", "b": "block1_conv1/bias"}, {"root": "model_weights"}),  # a saved model
])
def test_keras_h5_weights_read_as_layer_and_weight(tmp_path, naming, options):
    kernel, bias = np.ones((3, 3, 3, 8), np.float32), np.arange(8, dtype=np.float32)
    write_h5(tmp_path / "w.h5", {"input_1": {}, "block1_conv1": {naming["W"]: kernel, naming["b"]: bias}}, **options)
    with tensors.opened(tmp_path / "w.h5") as found:
        assert sorted(found) == ["block1_conv1/bias", "block1_conv1/kernel"]
        assert found.shape("block1_conv1/kernel") == (3, 3, 3, 8)
        np.testing.assert_array_equal(found["block1_conv1/bias"], bias)


def test_safetensors_read_as_they_are(tmp_path):
    save_file({"conv1.weight": np.ones((2, 3, 1, 1), np.float32)}, str(tmp_path / "w.safetensors"))
    with tensors.opened(tmp_path / "w.safetensors") as found:
        assert found.shape("conv1.weight") == (2, 3, 1, 1)
        np.testing.assert_array_equal(found["conv1.weight"], np.ones((2, 3, 1, 1), np.float32))


def test_files_that_are_not_weights(tmp_path):
    def read(path):
        with tensors.opened(path) as found:
            return dict(found)

    with pytest.raises(UserError, match="does not exist"):
        read(tmp_path / "missing.safetensors")
    (tmp_path / "w.pth").write_bytes(b"")
    with pytest.raises(UserError, match=r"unknown format '\.pth'; valid: \.safetensors, \.h5, \.hdf5"):
        read(tmp_path / "w.pth")
    h5py.File(tmp_path / "other.h5", "w").close()
    with pytest.raises(UserError, match="not Keras weights"):
        read(tmp_path / "other.h5")
    (tmp_path / "bad.safetensors").write_bytes(b"not a header")
    with pytest.raises(UserError, match="not a readable safetensors file"):
        read(tmp_path / "bad.safetensors")
