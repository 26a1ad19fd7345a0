"""The compiled training and evaluation steps: one code path for every tf.distribute strategy.

Keras 3's `model.fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585), while a
loop over `strategy.run` with the same model works under all of them, so the runner uses this.
Each step returns sums (loss, correct top-1, correct top-5, examples) reduced over replicas, and a
training step the learning rate its update used; averages are taken on the host, so every replica
count gives the same numbers. Steps take uint8 batches and `normalise` them first
(runner.data.splits.Splits.normalise): on the device, in the compiled graph, instead of on the
host's few cores.

The functions are traced without AutoGraph, as Keras's own steps are: their loops are tf.while_loop
and their branches tf.cond, written out, and converting them (AutoGraph parses the source of every
function a step calls) took about 1.4 s of each fresh process's first run.
"""

import keras
import tensorflow as tf

from runner.session.parts import Session
from runner.training import mixing
from runner.training.accumulation import accumulated
from runner.training.loss import Loss

SUMS = ("loss", "top1", "top5", "count")
RATE = "lr"  # the training steps' sum of the learning rates their updates used: per step, not per example


def averages(totals) -> dict[str, float]:
    """Sums of a pass (SUMS) as per-example means, on the host."""
    count = max(float(totals["count"]), 1.0)
    return {key: float(totals[key]) / count for key in ("loss", "top1", "top5")}


def main_output(outputs):
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def correct(labels, scores, k):
    k = min(k, scores.shape[-1])
    return tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, tf.cast(scores, tf.float32), k), tf.float32))


def sums(loss, labels, scores):
    return {"loss": tf.reduce_sum(loss), "top1": correct(labels, scores, 1),
            "top5": correct(labels, scores, 5), "count": tf.cast(tf.size(labels), tf.float32)}


def make_train_steps(session: Session):
    """A function running `count` training steps (trainer.steps_per_execution) on a distributed iterator
    of the session's strategy (runner/session/parts.py)."""
    model, strategy = session.model, session.strategy
    optimizer, loss = session.training.optimizer, session.training.loss
    passes, normalise = session.cfg.trainer.grad_accumulation, session.splits.normalise
    global_batch_size = session.cfg.trainer.batch_size // passes  # of one forward pass
    mix = mixing.from_config(session.cfg)

    def replica_step(images, labels):
        images, targets = normalise(images), tf.one_hot(labels, loss.num_classes)
        if mix:  # seeded by the update count, which a resume point restores
            images, targets = mix(images, targets, optimizer.iterations)
            labels = tf.argmax(targets, axis=-1, output_type=labels.dtype)  # what most of each image shows
        # trainer.grad_accumulation: the batch in that many passes, one update (training/accumulation.py)
        gradients, totals = accumulated(gradients_and_sums, (images, targets, labels), passes,
                                        model.trainable_variables, SUMS)
        if loss.weight_decay:
            gradients = [l2 if gradient is None else gradient + l2
                         for gradient, l2 in zip(gradients, l2_gradients())]
        optimizer.apply(gradients, model.trainable_variables)
        return totals

    def gradients_and_sums(images, targets, labels):
        with tf.GradientTape() as tape:
            outputs = model(images, training=True)
            per_example = loss.per_example_loss(targets, outputs)
            # Average over the global batch (of one pass) so the all-reduced gradient is the full batch's.
            scaled = optimizer.scale_loss(tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size))
        gradients = tape.gradient(scaled, model.trainable_variables)
        return gradients, sums(per_example, labels, main_output(outputs))

    def l2_gradients():
        """The gradients of the L2 term, scaled as the loss is, once an update: the term is the same in
        every pass of an accumulation, so added to the passes' mean it counts once, as in one pass of
        the whole batch. (Inside the passes' loop, TensorFlow's graph optimizer turns the sum of a deep
        net's gradients and their L2 terms into temporary variables that the loop's second pass finds
        already made: AlreadyExistsError.)"""
        with tf.GradientTape() as tape:
            scaled = optimizer.scale_loss(loss.l2_penalty(model.trainable_variables))
        return tape.gradient(scaled, model.trainable_variables)

    xla = session.part.resolved.jit_compile
    step = tf.function(replica_step, jit_compile=xla, autograph=False) if xla else replica_step

    def one_step(index, iterator, totals):
        # Read before the update, which uses the rate at this update count (a warm-up's first is 0).
        rate = tf.cast(keras.ops.convert_to_tensor(optimizer.learning_rate), tf.float32)
        per_replica = strategy.run(step, args=next(iterator))
        return index + 1, {key: totals[key] + strategy.reduce("SUM", per_replica[key], axis=None) for key in SUMS} | {
            RATE: totals[RATE] + rate}

    @tf.function(autograph=False)
    def train_steps(iterator, count):
        start = (tf.zeros_like(count), {key: tf.constant(0.0) for key in (*SUMS, RATE)})
        # `count` a tensor: any count, the epoch's remainder too, one trace.
        _, totals = tf.while_loop(lambda index, _: index < count,
                                  lambda index, totals: one_step(index, iterator, totals), start)
        return totals

    return train_steps


def make_statistics_average(model, strategy):
    """A function averaging the model's non-trainable variables (batch norm's moving mean and
    variance) over every replica. Each replica updates them from its own batches, and Keras keeps
    one replica's values per worker; averaged, every worker holds one model to evaluate and save."""
    statistics = model.non_trainable_variables

    @tf.function(autograph=False)
    def average():
        local = strategy.run(lambda: [tf.identity(variable.value) for variable in statistics])
        for variable, per_replica in zip(statistics, local):
            variable.assign(strategy.reduce("MEAN", per_replica, axis=None))  # on every replica and worker

    return average


def make_eval_step(session: Session, views: bool = False):
    """One evaluation batch: sums, plus the predicted and true labels for the confusion matrix. Its
    loss is the training loss's cross-entropy (label smoothing included), which needs no training part.
    `views`: each example is several views [B, N, H, W, C] (eval.ten_crop's ten crops, eval.scales' scales),
    scored by their averaged softmax (Krizhevsky et al. 2012, Section 4.1; Simonyan & Zisserman 2015, 4.2)."""
    model, strategy, normalise = session.model, session.strategy, session.splits.normalise
    trainer = session.cfg.trainer
    loss = Loss(session.cfg.data.num_classes, trainer.label_smoothing, aux_loss_weight=None)

    def replica_step(images, labels):
        images = normalise(images)
        if views:  # [B, N, H, W, C]: the N views in one batch, their softmax averaged
            crops = tf.reshape(images, [-1, *images.shape[2:]])
            logits = tf.cast(main_output(model(crops, training=False)), tf.float32)
            scores = tf.reduce_mean(tf.reshape(tf.nn.softmax(logits), [-1, images.shape[1], logits.shape[-1]]), axis=1)
            per_example = keras.losses.sparse_categorical_crossentropy(labels, scores)
            probabilities = scores
        else:
            scores = main_output(model(images, training=False))
            per_example = loss.cross_entropy(labels, scores)
            probabilities = tf.nn.softmax(tf.cast(scores, tf.float32))
        result = sums(per_example, labels, scores)
        result["predicted"] = tf.argmax(scores, axis=-1, output_type=tf.int32)
        result["labels"] = labels
        result["confidence"] = tf.reduce_max(probabilities, axis=-1)  # of the predicted class
        return result

    @tf.function(autograph=False)
    def eval_step(images, labels):
        per_replica = strategy.run(replica_step, args=(images, labels))
        totals = {key: strategy.reduce("SUM", per_replica[key], axis=None) for key in SUMS}
        local = lambda key: tf.concat(strategy.experimental_local_results(per_replica[key]), axis=0)
        return totals, local("predicted"), local("labels"), local("confidence")

    return eval_step
