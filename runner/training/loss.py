"""What training minimises: cross-entropy of the logits against the targets (label smoothing
included; soft targets when images are mixed), each example weighted by its class (data.class_weights),
GoogLeNet's auxiliary heads at their weight, and an L2 term on the weights. Evaluation's loss is the
same cross-entropy, unweighted, as Keras's `class_weight` leaves evaluation unweighted."""

import dataclasses

import keras
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Loss:
    num_classes: int
    label_smoothing: float
    aux_loss_weight: float | None
    weight_decay: float = 0.0  # coefficient of the L2 term, whose gradient is weight_decay * w
    class_weights: tuple[float, ...] | None = None  # one per class (runner.training.class_weights); None: all 1

    def l2_penalty(self, variables):
        squares = tf.add_n([tf.reduce_sum(tf.square(tf.cast(v.value, tf.float32))) for v in variables])
        # Each replica adds its share: the all-reduced gradient holds the term once.
        return tf.nn.scale_regularization_loss(0.5 * self.weight_decay * squares)

    def per_example_loss(self, targets, outputs):
        """Cross-entropy of the main logits against `targets` ([batch, classes] probabilities: one-hot
        labels, or mixed ones), plus GoogLeNet's auxiliary heads at their weight; times the class weight.

        A mixed target's weight is its classes' weights mixed in the same proportions, so mixing
        two examples of a class keeps that class's weight.
        """
        main, *aux = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        loss = self.soft_cross_entropy(targets, main)
        for side in aux:
            loss += (self.aux_loss_weight or 0.0) * self.soft_cross_entropy(targets, side)
        if self.class_weights is None:
            return loss
        return loss * tf.linalg.matvec(targets, tf.constant(self.class_weights, tf.float32))

    def cross_entropy(self, labels, logits):
        """Of integer labels."""
        return self.soft_cross_entropy(tf.one_hot(labels, self.num_classes), logits)

    def soft_cross_entropy(self, targets, logits):
        # Smoothing a mixed target equals mixing smoothed one-hot targets (it is linear), as timm's mixup_target does.
        return keras.losses.categorical_crossentropy(
            targets, tf.cast(logits, tf.float32), from_logits=True, label_smoothing=self.label_smoothing)
