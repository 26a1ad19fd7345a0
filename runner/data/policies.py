"""Per-image augmentation policies (augment.policy) and random erasing, applied after the crop and
flip: `finishing(augment, size)` gives what runner/data/augment.py `training` calls on each view.

randaugment: augment.policy_ops (N) operations, each chosen uniformly from the 14 of the table
below, all at magnitude bin augment.policy_magnitude (M) (Cubuk et al. 2020, RandAugment, Section 3).
trivialaugment: one operation, chosen uniformly, at a bin chosen uniformly, over the wide ranges
(Müller & Hutter 2021, TrivialAugment, Section 3 and Table 1: "TrivialAugmentWide").
autoaugment: one of the 25 two-operation sub-policies of the ImageNet policy, each operation applied
with its own probability and magnitude bin (Cubuk et al. 2019, AutoAugment, Appendix Table 9).

Magnitudes: torchvision's transforms/autoaugment.py `_augmentation_space`, the reference most
results are compared against. RandAugment's and TrivialAugment's have 31 bins, 0 to 30, so
augment.policy_magnitude is on the 0-30 scale: M=9 (the paper's ResNet-50 setting and torchvision's
default) is 9/30 of each range. timm and the paper's TPU code divide by 10 instead, so their M=9 is
our 27. AutoAugment's sub-policies index 10 bins. A signed magnitude is negated with probability 1/2.

Keras's RandAugment layer is not used: it draws with its own seed generator (a per-image seed tensor
is refused), samples each op's magnitude from a range instead of the fixed M, and computes all of
its ops on every image, selecting one with `where`. Here every draw comes from the image's stateless
seed and tf.switch_case runs only the chosen operation.
"""

import numpy as np
import tensorflow as tf

from runner.config.bounds import Choices
from runner.data import erasing
from runner.data import image_ops as ops
from runner.mistakes.errors import UserError

# The operations in torchvision's order; Invert only in AutoAugment's sub-policies.
OPERATIONS = {
    "Identity": ops.identity, "ShearX": ops.shear_x, "ShearY": ops.shear_y, "TranslateX": ops.translate_x,
    "TranslateY": ops.translate_y, "Rotate": ops.rotate, "Brightness": ops.brightness, "Color": ops.color,
    "Contrast": ops.contrast, "Sharpness": ops.sharpness, "Posterize": ops.posterize, "Solarize": ops.solarize,
    "AutoContrast": ops.auto_contrast, "Equalize": ops.equalize, "Invert": ops.invert,
}
NAMES = list(OPERATIONS)
RANDOM_OPERATIONS = 14  # RandAugment and TrivialAugment choose among all but Invert
SIGNED = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast",
          "Sharpness"}
BINS = 31  # RandAugment's and TrivialAugment's magnitude bins: augment.policy_magnitude is 0 to 30
AUTOAUGMENT_BINS = 10


def magnitudes(size, bins: int, *, wide: bool = False) -> np.ndarray:
    """float32 [operations, bins]: each operation's magnitude per bin, torchvision's `_augmentation_space`
    of RandAugment and AutoAugment, or with `wide` of TrivialAugmentWide. `size` is (height, width);
    operations without a magnitude have a row of zeros."""
    height, width = size
    largest = {
        "ShearX": 0.99 if wide else 0.3, "ShearY": 0.99 if wide else 0.3,
        # Translation: 32 pixels wide, else 150/331 of the side (AutoAugment's 150 pixels at 331).
        "TranslateX": 32.0 if wide else 150.0 / 331.0 * width, "TranslateY": 32.0 if wide else 150.0 / 331.0 * height,
        "Rotate": 135.0 if wide else 30.0,
        **{name: 0.99 if wide else 0.9 for name in ("Brightness", "Color", "Contrast", "Sharpness")},
    }
    table = np.zeros([len(NAMES), bins], np.float32)
    for name, top in largest.items():
        table[NAMES.index(name)] = np.linspace(0.0, top, bins)
    # Bits kept: 8 down to 4 (2 when wide); the solarize threshold: 255 down to 0.
    table[NAMES.index("Posterize")] = 8 - np.round(np.arange(bins) / ((bins - 1) / (6 if wide else 4)))
    table[NAMES.index("Solarize")] = np.linspace(255.0, 0.0, bins)
    return table


# Cubuk et al. 2019, Table 9 (ImageNet), as torchvision's _get_policies(IMAGENET): per sub-policy two
# (operation, probability, magnitude bin of 10); None: the operation takes no magnitude.
IMAGENET_POLICY = (
    (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)), (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
    (("Equalize", 0.8, None), ("Equalize", 0.6, None)), (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
    (("Equalize", 0.4, None), ("Solarize", 0.2, 4)), (("Equalize", 0.4, None), ("Rotate", 0.8, 8)),
    (("Solarize", 0.6, 3), ("Equalize", 0.6, None)), (("Posterize", 0.8, 5), ("Equalize", 1.0, None)),
    (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)), (("Equalize", 0.6, None), ("Posterize", 0.4, 6)),
    (("Rotate", 0.8, 8), ("Color", 0.4, 0)), (("Rotate", 0.4, 9), ("Equalize", 0.6, None)),
    (("Equalize", 0.0, None), ("Equalize", 0.8, None)), (("Invert", 0.6, None), ("Equalize", 1.0, None)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)), (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
    (("Color", 0.8, 8), ("Solarize", 0.8, 7)), (("Sharpness", 0.4, 7), ("Invert", 0.6, None)),
    (("ShearX", 0.6, 5), ("Equalize", 1.0, None)), (("Color", 0.4, 0), ("Equalize", 0.6, None)),
    (("Equalize", 0.4, None), ("Solarize", 0.2, 4)), (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
    (("Invert", 0.6, None), ("Equalize", 1.0, None)), (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
)


def apply(image, operation, magnitude, sign_seed):
    """Operation number `operation` (of NAMES) at `magnitude`, negated with probability 1/2 if signed.
    Only the chosen operation runs (tf.switch_case)."""
    signed = tf.gather(tf.constant([name in SIGNED for name in NAMES]), operation)
    flip = tf.logical_and(signed, tf.random.stateless_uniform([], sign_seed) < 0.5)
    magnitude = tf.where(flip, -magnitude, magnitude)
    branches = [lambda op=op: op(image, magnitude) for op in OPERATIONS.values()]
    return tf.ensure_shape(tf.switch_case(operation, branches), image.shape)


def rand_augment(augment, size):
    """N uniformly chosen operations at bin M (torchvision's RandAugment: Identity is one of them)."""
    table = tf.constant(magnitudes(size, BINS)[:, augment.policy_magnitude])

    def policy(image, seed):
        for step_seed in tf.unstack(tf.random.experimental.stateless_split(seed, augment.policy_ops)):
            choice_seed, sign_seed = tf.unstack(tf.random.experimental.stateless_split(step_seed, 2))
            operation = tf.random.stateless_uniform([], choice_seed, 0, RANDOM_OPERATIONS, tf.int32)
            image = apply(image, operation, tf.gather(table, operation), sign_seed)
        return image

    return policy


def trivial_augment(augment, size):
    """One uniformly chosen operation at a uniformly chosen bin of the wide ranges."""
    del augment
    table = tf.constant(magnitudes(size, BINS, wide=True))

    def policy(image, seed):
        choice_seed, bin_seed, sign_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
        operation = tf.random.stateless_uniform([], choice_seed, 0, RANDOM_OPERATIONS, tf.int32)
        chosen_bin = tf.random.stateless_uniform([], bin_seed, 0, BINS, tf.int32)
        return apply(image, operation, table[operation, chosen_bin], sign_seed)

    return policy


def auto_augment(augment, size):
    """One of the 25 sub-policies, chosen uniformly; each of its operations applied with its probability
    (drawn u <= p, as torchvision)."""
    del augment
    table = magnitudes(size, AUTOAUGMENT_BINS)
    steps = [[(NAMES.index(name), p, 0.0 if level is None else table[NAMES.index(name), level])
              for name, p, level in pair] for pair in IMAGENET_POLICY]
    operations, probabilities, strengths = (tf.constant(np.array(steps)[..., i].astype(dtype))
                                            for i, dtype in enumerate((np.int32, np.float32, np.float32)))

    def policy(image, seed):
        choice_seed, *step_seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
        chosen = tf.random.stateless_uniform([], choice_seed, 0, len(IMAGENET_POLICY), tf.int32)
        for index, step_seed in enumerate(step_seeds):
            apply_seed, sign_seed = tf.unstack(tf.random.experimental.stateless_split(step_seed, 2))
            applied = tf.random.stateless_uniform([], apply_seed) <= probabilities[chosen, index]
            operation = tf.where(applied, operations[chosen, index], NAMES.index("Identity"))
            image = apply(image, operation, strengths[chosen, index], sign_seed)
        return image

    return policy


POLICIES = Choices("augment.policy", "policy", {
    "randaugment": rand_augment,
    "trivialaugment": trivial_augment,
    "autoaugment": auto_augment,
})

# Stream numbers folded into the image's seed (stateless_fold_in): apart from the seeds the crop and
# colour steps split from it, whatever their count.
POLICY_STREAM, ERASING_STREAM = 101, 102


def finishing(augment, size):
    """(view, seed) -> the view with augment.policy, then augment.random_erasing, applied to its image;
    `size` is the model's input (height, width). Unchanged when both are off. Erasing comes last, so no
    other step moves or recolours the erased patch (as timm and torchvision order them)."""
    steps = []
    if augment.policy is not None:
        check_policy(augment)
        steps.append((POLICIES.of(augment.policy)(augment, size), POLICY_STREAM))
    if augment.random_erasing:
        erasing.check(augment.random_erasing)
        steps.append((erasing.random_erasing(augment.random_erasing), ERASING_STREAM))

    def finish(view, seed):
        if not steps:
            return view

        def finished(shape, read):
            image = view(shape, read)
            for step, stream in steps:
                image = step(image, tf.random.experimental.stateless_fold_in(seed, stream))
            return image

        return finished

    return finish


def check_policy(augment) -> None:
    POLICIES.of(augment.policy)
    if not 0 <= augment.policy_magnitude < BINS:
        raise UserError(f"augment.policy_magnitude={augment.policy_magnitude}: expected 0 to {BINS - 1} "
                        f"(torchvision's {BINS} magnitude bins)")
