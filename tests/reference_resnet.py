"""An independent ResNet forward pass in plain TensorFlow ops, written from torchvision's definitions
(torchvision/models/resnet.py: BasicBlock, Bottleneck, ResNet._make_layer, ResNet._forward_impl), on a
state dict of numpy arrays in torchvision's names and layouts (OIHW convs, (out, in) fc).

It shares nothing with builders/ or runner/weights/: it pads as torch does (symmetric zeros for convs,
-inf for the max pool), normalises with torch's inference formula, and transposes the kernels itself.
"""

import numpy as np
import tensorflow as tf

# torchvision's resnet18 ... resnet152: block type and blocks per stage.
ARCHITECTURES = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
EXPANSION = {"basic": 1, "bottleneck": 4}
STAGE_WIDTHS = (64, 128, 256, 512)
BN_EPSILON = 1e-5  # nn.BatchNorm2d's default


def forward(state: dict[str, np.ndarray], images: np.ndarray, depth: int) -> np.ndarray:
    """Logits for NHWC float32 `images`, the model in inference mode (BN uses its running statistics)."""
    kind, stages = ARCHITECTURES[depth]
    block = _basic if kind == "basic" else _bottleneck
    x = tf.nn.relu(_bn(_conv(tf.constant(images), state, "conv1", stride=2, pad=3), state, "bn1"))
    x = _max_pool_3x3_s2_p1(x)
    for stage, blocks in enumerate(stages):
        for index in range(blocks):
            stride = 2 if stage > 0 and index == 0 else 1  # _make_layer: the first block carries the stride
            x = block(x, state, f"layer{stage + 1}.{index}", stride)
    x = tf.reduce_mean(x, axis=[1, 2])  # AdaptiveAvgPool2d((1, 1)) + flatten
    return (x @ tf.constant(state["fc.weight"].T) + state["fc.bias"]).numpy()


def _conv(x, state, name, *, stride, pad):
    """nn.Conv2d(padding=pad, bias=False): zeros on both sides, then a valid convolution."""
    kernel = tf.constant(state[f"{name}.weight"].transpose(2, 3, 1, 0))  # OIHW -> HWIO
    x = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    return tf.nn.conv2d(x, kernel, strides=stride, padding="VALID")


def _bn(x, state, name):
    """nn.BatchNorm2d in eval(): (x - running_mean) / sqrt(running_var + eps) * weight + bias."""
    return tf.nn.batch_normalization(x, state[f"{name}.running_mean"], state[f"{name}.running_var"],
                                     offset=state[f"{name}.bias"], scale=state[f"{name}.weight"],
                                     variance_epsilon=BN_EPSILON)


def _max_pool_3x3_s2_p1(x):
    """nn.MaxPool2d(kernel_size=3, stride=2, padding=1): torch pads a max pool with -inf."""
    x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=-np.inf)
    return tf.nn.max_pool2d(x, ksize=3, strides=2, padding="VALID")


def _shortcut(x, state, name, stride, channels):
    # _make_layer adds downsample = conv1x1(stride) + BN when the stride or the width changes.
    if stride == 1 and x.shape[-1] == channels:
        return x
    return _bn(_conv(x, state, f"{name}.downsample.0", stride=stride, pad=0), state, f"{name}.downsample.1")


def _basic(x, state, name, stride):
    out = tf.nn.relu(_bn(_conv(x, state, f"{name}.conv1", stride=stride, pad=1), state, f"{name}.bn1"))
    out = _bn(_conv(out, state, f"{name}.conv2", stride=1, pad=1), state, f"{name}.bn2")
    return tf.nn.relu(out + _shortcut(x, state, name, stride, out.shape[-1]))


def _bottleneck(x, state, name, stride):
    # ResNet v1.5: the stride sits on the 3x3 conv2 (torchvision's Bottleneck docstring).
    out = tf.nn.relu(_bn(_conv(x, state, f"{name}.conv1", stride=1, pad=0), state, f"{name}.bn1"))
    out = tf.nn.relu(_bn(_conv(out, state, f"{name}.conv2", stride=stride, pad=1), state, f"{name}.bn2"))
    out = _bn(_conv(out, state, f"{name}.conv3", stride=1, pad=0), state, f"{name}.bn3")
    return tf.nn.relu(out + _shortcut(x, state, name, stride, out.shape[-1]))


def random_state_dict(depth: int, num_classes: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """A torchvision-named state dict with random weights: He-scaled convs and a batch norm that is
    far from the identity (random weight, bias, running mean and positive running variance)."""
    rng = np.random.default_rng(seed)
    kind, stages = ARCHITECTURES[depth]
    state: dict[str, np.ndarray] = {}
    _add_conv(state, rng, "conv1", 3, 64, 7)
    _add_bn(state, rng, "bn1", 64)
    channels = 64
    for stage, (width, blocks) in enumerate(zip(STAGE_WIDTHS, stages)):
        for index in range(blocks):
            name, stride = f"layer{stage + 1}.{index}", (2 if stage > 0 and index == 0 else 1)
            channels = _add_block(state, rng, kind, name, channels, width, stride)
    state["fc.weight"] = (rng.standard_normal((num_classes, channels)) / np.sqrt(channels)).astype(np.float32)
    state["fc.bias"] = rng.normal(0, 0.1, num_classes).astype(np.float32)
    return state


def _add_block(state, rng, kind, name, channels, width, stride) -> int:
    out = width * EXPANSION[kind]
    if kind == "basic":
        convs = [(channels, width, 3), (width, width, 3)]
    else:
        convs = [(channels, width, 1), (width, width, 3), (width, out, 1)]
    for number, (fan_in, fan_out, size) in enumerate(convs, start=1):
        _add_conv(state, rng, f"{name}.conv{number}", fan_in, fan_out, size)
        # The block's last BN scaled down, so the residual sum stays of one scale over 50 blocks.
        _add_bn(state, rng, f"{name}.bn{number}", fan_out, scale=0.3 if number == len(convs) else 1.0)
    if stride != 1 or channels != out:
        _add_conv(state, rng, f"{name}.downsample.0", channels, out, 1)
        _add_bn(state, rng, f"{name}.downsample.1", out)
    return out


def _add_conv(state, rng, name, fan_in, fan_out, size):
    std = np.sqrt(2.0 / (fan_in * size * size))  # He et al. 2015 (PReLU paper), fan in
    state[f"{name}.weight"] = (rng.standard_normal((fan_out, fan_in, size, size)) * std).astype(np.float32)


def _add_bn(state, rng, name, channels, scale=1.0):
    state[f"{name}.weight"] = (rng.uniform(0.5, 1.5, channels) * scale).astype(np.float32)
    state[f"{name}.bias"] = rng.normal(0, 0.1, channels).astype(np.float32)
    state[f"{name}.running_mean"] = rng.normal(0, 0.1, channels).astype(np.float32)
    state[f"{name}.running_var"] = rng.uniform(0.5, 2.0, channels).astype(np.float32)
    state[f"{name}.num_batches_tracked"] = np.array(1000, dtype=np.int64)
