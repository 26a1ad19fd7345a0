"""trainer.ema (the weights' moving average is what is evaluated, checkpointed and saved) and
trainer.grad_accumulation (a batch in several passes, one update): LeNet on real digits, under the
default strategy and a 2-replica MirroredStrategy, checked against references written here from the
definitions, and resumed as an uninterrupted run."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import compose
from runner.mistakes.errors import UserError
from runner.session.parts import prepare
from runner.session.strategy import distributed
from runner.training import loop, resume, steps
from runner.training.accumulation import check_passes
from runner.training.averaged import averaged_weights
from runner.training.callbacks import standard_callbacks
from runner.training.evaluation import evaluate
from runner.training.optim import make_optimizer

QUICK = ("trainer.jit_compile=false", "trainer.precision=float32", "trainer.steps_per_execution=1")
STRATEGIES = {"default": ("trainer.strategy=default",),
              "mirrored": ("trainer.strategy=mirrored", "trainer.cpu_replicas=2")}
# Plain SGD with momentum at a constant rate, the L2 term on: what the reference below computes.
SGD = ("optimizer=sgd", "optimizer.lr=0.1", "optimizer.momentum=0.9", "optimizer.nesterov=false",
       "optimizer.weight_decay=0.001", "schedule=constant", "trainer.label_smoothing=0")


class Trajectory(keras.callbacks.Callback):
    """The model's weights after every step (steps_per_execution=1): the raw weights training moves."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_train_batch_end(self, batch, logs=None):
        self.weights.append([weight.copy() for weight in self.model.get_weights()])


def moving_average(trajectory, decay):
    """Polyak averaging as Keras's use_ema defines it: the weights after the first update, then
    average = decay * average + (1 - decay) * weights after each later one."""
    average = [np.float64(weight) for weight in trajectory[0]]
    for weights in trajectory[1:]:
        average = [decay * mean + (1 - decay) * weight for mean, weight in zip(average, weights)]
    return average


def assert_weights_equal(got, expected, rtol=1e-5, atol=1e-6):
    assert len(got) == len(expected)
    for one, other in zip(got, expected):
        np.testing.assert_allclose(one, other, rtol=rtol, atol=atol)


def train(tmp_path, *overrides):
    cfg = compose("trainer.epochs=2", "trainer.steps_per_epoch=2", *QUICK, *overrides)
    session = prepare(cfg)
    trajectory = Trajectory()
    trained = loop.fit(session, loop.EpochHooks([trajectory, *standard_callbacks(cfg, tmp_path)]))
    return session, trajectory.weights, trained.history


@pytest.mark.e2e
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_average_is_evaluated_checkpointed_and_saved_while_training_goes_on_from_the_raw_weights(
        tmp_path, strategy):
    decay = 0.5  # large steps of the average, so it stands well apart from the raw weights
    session, trajectory, history = train(tmp_path / "ema", f"trainer.ema={decay}", *STRATEGIES[strategy])
    _, plain_trajectory, _ = train(tmp_path / "plain", *STRATEGIES[strategy])
    # Swapping the average in and out around each evaluation leaves the raw weights bit for bit.
    for step, (got, expected) in enumerate(zip(trajectory, plain_trajectory)):
        assert all(np.array_equal(one, other) for one, other in zip(got, expected)), f"step {step + 1}"
    expected = moving_average(trajectory, decay)
    model = session.model
    assert_weights_equal(model.get_weights(), expected)  # what model.keras and the final evaluation take
    assert not np.allclose(model.get_weights()[0], trajectory[-1][0], atol=1e-3), "the average is not the raw"
    # The last epoch's val_loss is the average's.
    eval_step = steps.make_eval_step(session)
    assert evaluate(session, session.splits.val, eval_step).metrics["loss"] == pytest.approx(history["val_loss"][-1])
    model.set_weights(trajectory[-1])
    assert evaluate(session, session.splits.val, eval_step).metrics["loss"] != pytest.approx(history["val_loss"][-1])
    model.load_weights(tmp_path / "ema" / "checkpoints" / "last.weights.h5")
    assert_weights_equal(model.get_weights(), expected)


def test_the_swap_is_exact_where_adding_and_subtracting_would_round():
    weight = keras.Variable(np.array([1e-8, 3.0], "float32"))
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.9))
    optimizer.build([weight])
    average = optimizer.inner_optimizer._model_variables_moving_average[0]
    average.assign(np.array([1.0, 1e-9], "float32"))
    default = tf.distribute.get_strategy()
    with averaged_weights(optimizer, default):
        np.testing.assert_array_equal(weight.numpy(), np.array([1.0, 1e-9], "float32"))
    np.testing.assert_array_equal(weight.numpy(), np.array([1e-8, 3.0], "float32"))  # 1e-8 + 1 - 1 would be 0
    np.testing.assert_array_equal(average.numpy(), np.array([1.0, 1e-9], "float32"))


def test_the_private_lists_of_keras_the_average_is_read_from_are_still_there():
    """runner/training/averaged.py reads two lists a Keras optimizer keeps private, as Keras's own
    SwapEMAWeights does: the variables it was built on and their averages, in one order. A Keras
    upgrade that renames or drops one fails here, naming it."""
    variables = [keras.Variable(np.zeros(2, "float32")), keras.Variable(np.ones([3, 1], "float32"))]
    optimizer = keras.optimizers.SGD(0.1, use_ema=True)
    optimizer.build(variables)
    for name in ("_trainable_variables", "_model_variables_moving_average"):
        assert hasattr(optimizer, name), (f"Keras {keras.__version__}'s optimizer has no {name}, which "
                                          "runner/training/averaged.py reads: find where this Keras keeps it")
    built = optimizer._trainable_variables
    same = len(built) == 2 and all(mine is given for mine, given in zip(built, variables))
    assert same, "_trainable_variables is no longer the list the optimizer was built on"
    shapes = [tuple(average.shape) for average in optimizer._model_variables_moving_average]
    assert shapes == [(2,), (3, 1)], "_model_variables_moving_average no longer pairs with the variables in order"


def test_a_decay_of_0_is_the_raw_weights_and_1_is_refused():
    assert not make_optimizer(compose("trainer.ema=0"), 1, "float32").use_ema  # off: decay 0 averages nothing
    with pytest.raises(UserError, match=r"trainer.ema=1.0: expected a decay in \[0, 1\)"):
        make_optimizer(compose("trainer.ema=1"), 1, "float32")


def reference_sgd(model, start, batches, normalise):
    """SGD with momentum 0.9, rate 0.1 and an L2 term of 0.001, one update per whole batch, written
    from the definitions: loss = mean cross-entropy + 0.001 / 2 * sum(w^2); v = 0.9 v - 0.1 g; w += v."""
    weights, velocity = [np.float64(weight) for weight in start], [np.zeros_like(weight) for weight in start]
    for images, labels in batches:
        model.set_weights([weight.astype("float32") for weight in weights])
        with tf.GradientTape() as tape:
            logits = model(normalise(images), training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
            loss += 0.0005 * tf.add_n([tf.reduce_sum(tf.square(v)) for v in model.trainable_variables])
        gradients = tape.gradient(loss, model.trainable_variables)
        velocity = [0.9 * v - 0.1 * g.numpy() for v, g in zip(velocity, gradients)]
        weights = [weight + v for weight, v in zip(weights, velocity)]
    return weights


@pytest.mark.e2e
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_four_passes_of_a_batch_update_as_the_whole_batch_does(strategy):
    session = prepare(compose("trainer.batch_size=32", "trainer.grad_accumulation=4", *SGD, *QUICK,
                              *STRATEGIES[strategy]))
    assert session.training.steps_per_epoch == session.splits.steps_per_epoch, "an epoch counts updates"
    images, labels = next(iter(session.splits.val.unbatch().batch(64)))  # real digits, centre-cropped
    batches = [(images[:32], labels[:32]), (images[32:], labels[32:])]
    model = session.model
    start = [weight.copy() for weight in model.get_weights()]
    train_steps = steps.make_train_steps(session)
    two = tf.data.Dataset.from_tensor_slices((images, labels)).batch(32)
    totals = train_steps(iter(distributed(session.strategy, two)), tf.constant(2))
    assert float(totals["count"]) == 64, "every image counted once"
    assert keras.ops.convert_to_numpy(session.training.optimizer.iterations) == 2, "one update a batch"
    trained = [weight.copy() for weight in model.get_weights()]
    assert_weights_equal(trained, reference_sgd(model, start, batches, session.splits.normalise), rtol=1e-4)


@pytest.mark.e2e
def test_a_deep_net_accumulates_with_the_l2_term():
    """ResNet-18's gradients and their L2 terms, summed inside the passes' loop, made TensorFlow's graph
    optimizer fail the second call of the steps (AlreadyExistsError); the term is added once an update."""
    session = prepare(compose("model=resnet18", "data=synthetic", "model.input_shape=[32,32,3]", "data.train_size=16",
                              "data.val_size=8", "trainer.batch_size=8", "trainer.grad_accumulation=2", *QUICK))
    assert session.training.loss.weight_decay > 0
    start = [weight.copy() for weight in session.model.get_weights()]
    train_steps, batches = steps.make_train_steps(session), iter(distributed(session.strategy, session.splits.train))
    counted = [float(train_steps(batches, tf.constant(1))["count"]) for _ in range(2)]  # a step a call, as in an epoch
    assert counted == [8, 8]
    assert not any(np.array_equal(before, after) for before, after in zip(start, session.model.get_weights())
                   if before.ndim == 4), "every convolution moved"


@pytest.mark.parametrize("batch_size, passes, replicas, says", [
    (32, 3, 1, "trainer.grad_accumulation=3 does not divide trainer.batch_size=32"),
    (36, 4, 2, "a pass of 9 images .* does not split over 2 replicas; make batch_size a multiple of 8")])
def test_a_batch_that_does_not_split_into_passes_is_refused_in_one_line(batch_size, passes, replicas, says):
    with pytest.raises(UserError, match=says):
        check_passes(batch_size, passes, replicas)


class Interrupted(Exception):
    pass


class StopsAfterFirstEpoch(resume.ResumePoint):
    """A resume point whose run is killed just after it saved epoch 1."""

    def save(self, epoch, history, callbacks, model):
        super().save(epoch, history, callbacks, model)
        raise Interrupted


def resumable(tmp_path, cfg, point_type=resume.ResumePoint):
    session = prepare(cfg)
    start = resume.read(tmp_path / "resume") or resume.Start(run_dir=tmp_path, directory=tmp_path / "resume")
    point = point_type(start, session.model, session.training.optimizer, "run")
    return session, loop.EpochHooks([], resume_point=point)


@pytest.mark.e2e
@pytest.mark.parametrize("trick", ["trainer.ema=0.5", "trainer.grad_accumulation=4"])
def test_a_run_stopped_after_an_epoch_resumes_to_the_uninterrupted_run(tmp_path, trick):
    cfg = compose(trick, "trainer.epochs=2", "trainer.steps_per_epoch=2", *QUICK)
    uninterrupted, hooks = resumable(tmp_path / "uninterrupted", cfg)
    loop.fit(uninterrupted, hooks)
    interrupted, hooks = resumable(tmp_path / "interrupted", cfg, StopsAfterFirstEpoch)
    with pytest.raises(Interrupted):
        loop.fit(interrupted, hooks)
    resumed, hooks = resumable(tmp_path / "interrupted", cfg)
    assert hooks.resume_point.start.epoch == 1
    loop.fit(resumed, hooks)
    assert_weights_equal(resumed.model.get_weights(), uninterrupted.model.get_weights())
    assert_weights_equal([v.numpy() for v in resumed.training.optimizer.variables],
                         [v.numpy() for v in uninterrupted.training.optimizer.variables])
