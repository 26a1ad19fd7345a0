"""Given the same weights, our zoo models compute what the reference implementations compute.

VGG-16/19 against keras.applications (weights=None, random), through the published Keras Applications
HDF5 layout and through a torchvision/timm state dict made from the same weights (OIHW convs, fc6 over
a (C, H, W) flatten); ResNet-18 ... 152 against tests/reference_resnet.py, a plain-TensorFlow forward
pass of torchvision's ResNet on a torchvision state dict.
"""

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
from runner.weights import tensors
from runner.weights.convert import assign

pytestmark = pytest.mark.e2e  # every test here: full-size VGGs and ResNets against their references

TOLERANCE = 1e-5  # max |ours - reference| / max |reference logit|
# Not 224x224: a map of 2x3 before the flatten tells (H, W, C) from (C, H, W) and H from W, where
# 7x7 cannot tell H from W, and fc6 shrinks from 25088 to 3072 inputs (seconds, not half a minute).
VGG_INPUT = (64, 96)


def zoo_model(name: str, height: int, width: int) -> keras.Model:
    spec = model_spec(compose(f"model={name}", "data=imagenet", f"model.input_shape=[{height},{width},3]"))
    # Only the architecture's keys: the model node also says where weights come from (model.weights).
    return builders.build_model({key: value for key, value in spec.items() if key in SPEC_KEYS})


def relative_error(ours, reference) -> float:
    return float(np.abs(np.asarray(ours) - reference).max() / np.abs(reference).max())


def images(height: int, width: int, count: int = 2) -> np.ndarray:
    return np.random.default_rng(7).uniform(-2, 2, (count, height, width, 3)).astype(np.float32)


def keras_applications_vgg(depth: int) -> keras.Model:
    """keras.applications' VGG with random weights, its biases random too (Keras initialises them to 0)."""
    reference = getattr(keras.applications, f"VGG{depth}")(
        weights=None, input_shape=(*VGG_INPUT, 3), classifier_activation=None)  # logits
    rng = np.random.default_rng(depth)
    for layer in reference.layers:
        if layer.weights:
            layer.bias.assign(rng.normal(0, 0.05, layer.bias.shape).astype(np.float32))
    return reference


def write_published_h5(reference: keras.Model, path) -> None:
    """The structure of vgg16_weights_tf_dim_ordering_tf_kernels.h5 (Keras 1 era): root attribute
    layer_names (every layer), a group per layer with attribute weight_names, datasets `<layer>_W_1:0`
    (the HWIO or (in, out) kernel) and `<layer>_b_1:0`."""
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = [layer.name.encode() for layer in reference.layers]
        for layer in reference.layers:
            group = handle.create_group(layer.name)
            names = [f"{layer.name}_W_1:0", f"{layer.name}_b_1:0"] if layer.weights else []
            group.attrs["weight_names"] = [name.encode() for name in names]
            for name, variable in zip(names, (layer.kernel, layer.bias) if layer.weights else ()):
                group.create_dataset(name, data=keras.ops.convert_to_numpy(variable))


def torchvision_vgg_state(reference: keras.Model, timm_names: bool) -> dict[str, np.ndarray]:
    """The reference's weights as torchvision's VGG state dict: `features` is one nn.Sequential of
    conv, ReLU, ..., MaxPool, so a conv's index counts the ReLUs and pools before it; fc weights are
    (out, in) and fc1 reads a (C, H, W) flatten; timm renames the classifier and makes fc1/fc2 convs."""
    state, index = {}, 0
    for layer in reference.layers:
        if isinstance(layer, keras.layers.Conv2D):
            state[f"features.{index}.weight"] = np.asarray(layer.kernel).transpose(3, 2, 0, 1)
            state[f"features.{index}.bias"] = np.asarray(layer.bias)
            index += 2  # the conv and its ReLU
        elif isinstance(layer, keras.layers.MaxPooling2D):
            index += 1
    fc1, fc2, head = (reference.get_layer(name) for name in ("fc1", "fc2", "predictions"))
    height, width, channels = reference.get_layer("flatten").input.shape[1:]
    fc1_weight = np.asarray(fc1.kernel).reshape(height, width, channels, -1).transpose(3, 2, 0, 1)
    weights = {"fc1": fc1_weight, "fc2": np.asarray(fc2.kernel).T, "head": np.asarray(head.kernel).T}
    if timm_names:
        names = {"fc1": "pre_logits.fc1", "fc2": "pre_logits.fc2", "head": "head.fc"}
        weights["fc2"] = weights["fc2"][:, :, None, None]
    else:
        names = {"fc1": "classifier.0", "fc2": "classifier.3", "head": "classifier.6"}
        weights["fc1"] = weights["fc1"].reshape(weights["fc1"].shape[0], -1)
    for key, layer in (("fc1", fc1), ("fc2", fc2), ("head", head)):
        state[f"{names[key]}.weight"] = weights[key]
        state[f"{names[key]}.bias"] = np.asarray(layer.bias)
    return state


@pytest.mark.parametrize("depth", [16, 19])
def test_vgg_equals_keras_applications_through_both_published_layouts(depth, tmp_path):
    reference = keras_applications_vgg(depth)
    x = images(*VGG_INPUT)
    expected = np.asarray(reference(x, training=False))
    ours = zoo_model(f"vgg{depth}", *VGG_INPUT)

    write_published_h5(reference, tmp_path / "vgg.h5")
    with tensors.opened(tmp_path / "vgg.h5") as found:
        assign(ours, found, "keras_applications_vgg")
    assert relative_error(ours(x, training=False), expected) < TOLERANCE

    # save_file writes an array's memory as it lies: a transposed view must be made contiguous first.
    state = {key: np.ascontiguousarray(value) for key, value in torchvision_vgg_state(reference, True).items()}
    save_file(state, str(tmp_path / "vgg.safetensors"))
    ours = zoo_model(f"vgg{depth}", *VGG_INPUT)  # fresh weights: nothing left over from the HDF5 load
    with tensors.opened(tmp_path / "vgg.safetensors") as found:
        assign(ours, found, "torchvision_vgg")
    assert relative_error(ours(x, training=False), expected) < TOLERANCE

    assign(ours, torchvision_vgg_state(reference, timm_names=False), "torchvision_vgg")  # torchvision's names
    assert relative_error(ours(x, training=False), expected) < TOLERANCE


# 224 for ResNet-18 and 50; the deeper ones on 96x96 (every strided layer still sees an even map,
# where symmetric and Keras 'same' padding differ) to keep the file fast.
@pytest.mark.parametrize("depth, size", [(18, 224), (34, 96), (50, 224), (101, 96), (152, 96)])
def test_resnet_equals_torchvision_definition(depth, size):
    state = reference_resnet.random_state_dict(depth)
    x = images(size, size)
    expected = reference_resnet.forward(state, x, depth)
    ours = zoo_model(f"resnet{depth}", size, size)
    assign(ours, state, "torchvision_resnet")
    assert relative_error(ours(x, training=False), expected) < TOLERANCE
