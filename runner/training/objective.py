"""What training minimises: cross-entropy of the logits (label smoothing included), GoogLeNet's auxiliary
heads at their weight, and an L2 term on the weights; evaluation's loss is the same cross-entropy."""

import dataclasses

import keras
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Objective:
    num_classes: int
    label_smoothing: float
    aux_loss_weight: float | None
    weight_decay: float = 0.0  # coefficient of the L2 term, whose gradient is weight_decay * w

    def l2_penalty(self, variables):
        squares = tf.add_n([tf.reduce_sum(tf.square(tf.cast(v.value, tf.float32))) for v in variables])
        # Each replica adds its share: the all-reduced gradient holds the term once.
        return tf.nn.scale_regularization_loss(0.5 * self.weight_decay * squares)

    def per_example_loss(self, labels, outputs):
        """Cross-entropy of the main logits, plus GoogLeNet's auxiliary heads at their weight."""
        main, *aux = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        loss = self.cross_entropy(labels, main)
        for side in aux:
            loss += (self.aux_loss_weight or 0.0) * self.cross_entropy(labels, side)
        return loss

    def cross_entropy(self, labels, logits):
        targets = tf.one_hot(labels, self.num_classes)
        return keras.losses.categorical_crossentropy(
            targets, tf.cast(logits, tf.float32), from_logits=True, label_smoothing=self.label_smoothing)
