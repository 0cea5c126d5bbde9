"""The fused training kernels (BatchNormalization, Adam) compute what Keras' own layers do."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from kpstudio.ml.models import BatchNormalization  # noqa: E402
from kpstudio.ml.optimizer import FusedAdam  # noqa: E402


def test_fused_batch_norm_matches_keras_in_training_and_inference():
    x = tf.random.stateless_normal((8, 6, 6, 5), seed=(1, 2)) * 3.0 + 1.0
    upstream = tf.random.stateless_normal(x.shape, seed=(3, 4))
    results = []
    for layer in (keras.layers.BatchNormalization(momentum=0.9), BatchNormalization(momentum=0.9)):
        layer.build(x.shape)
        layer.gamma.assign(np.linspace(0.5, 2.0, 5))
        layer.beta.assign(np.linspace(-1.0, 1.0, 5))
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * upstream)
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        results.append((y, grads, layer.moving_mean.numpy(), layer.moving_variance.numpy(),
                        layer(x, training=False)))  # fmt: skip
    (y0, g0, mean0, var0, inf0), (y1, g1, mean1, var1, inf1) = results
    np.testing.assert_allclose(y1, y0, atol=1e-5)
    for a, b in zip(g0, g1):
        np.testing.assert_allclose(b, a, atol=1e-4)
    np.testing.assert_allclose(mean1, mean0, atol=1e-6)
    # The fused kernel keeps the unbiased batch variance (n / (n - 1), n = 288 here).
    np.testing.assert_allclose(var1, var0, rtol=5e-3)
    np.testing.assert_allclose(inf1, inf0, atol=2e-2)
    # Same class name, same weight layout: a plain BatchNormalization's weights load.
    assert BatchNormalization(momentum=0.9).name.startswith("batch_normalization")


def _train(optimizer_class, steps=5):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(2)])  # fmt: skip
    optimizer = optimizer_class(1e-2)
    optimizer.build(model.trainable_variables)
    x = tf.random.stateless_normal((16, 6), seed=(5, 6))
    target = tf.random.stateless_normal((16, 2), seed=(7, 8))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x) - target))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    losses = [float(step()) for _ in range(steps)]
    return losses, model.get_weights(), [v.numpy() for v in optimizer.variables]


def test_fused_adam_follows_keras_adam_step_for_step():
    losses0, weights0, slots0 = _train(keras.optimizers.Adam)
    losses1, weights1, slots1 = _train(FusedAdam)
    np.testing.assert_allclose(losses1, losses0, rtol=1e-5)
    for a, b in zip(weights0, weights1):
        np.testing.assert_allclose(b, a, atol=1e-5)
    # Same slot variables in the same order: checkpoints are interchangeable.
    assert len(slots1) == len(slots0)
    for a, b in zip(slots0, slots1):
        np.testing.assert_allclose(b, a, atol=1e-5)
