"""The training optimizer: Adam, updated with TensorFlow's fused per-variable kernel.

Why: Keras 3's Adam writes each variable's update as about eighteen small ops (casts, powers,
moments, the step). With a small model on a 2-core CPU the work per op is tiny, so a model of
60-odd variables spends a large share of every step dispatching ~1,100 optimizer ops.
ResourceApplyAdam does the same arithmetic in one op per variable, and the bias-correction
powers are computed once per step instead of once per variable.

The math is Keras' Adam (same defaults, same moments, same bias correction) and the slots are
Adam's own variables, so checkpoints (kpstudio.ml.checkpoint) read and write them unchanged.
Under a tf.distribute strategy the variables are distributed values, and Keras' own update
(which knows how to apply to each replica) is used.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class FusedAdam(keras.optimizers.Adam):
    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if self.amsgrad or tf.distribute.has_strategy():
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        step = tf.cast(self.iterations + 1, tf.float32)
        beta_1_power = tf.pow(tf.constant(self.beta_1, tf.float32), step)
        beta_2_power = tf.pow(tf.constant(self.beta_2, tf.float32), step)
        lr = tf.cast(learning_rate, tf.float32)
        for grad, variable in zip(grads, trainable_variables):
            index = self._get_variable_index(variable)
            tf.raw_ops.ResourceApplyAdam(
                var=variable.value.handle,
                m=self._momentums[index].value.handle,
                v=self._velocities[index].value.handle,
                beta1_power=beta_1_power, beta2_power=beta_2_power, lr=lr,
                beta1=self.beta_1, beta2=self.beta_2, epsilon=self.epsilon,
                grad=tf.cast(grad, variable.dtype),
            )  # fmt: skip


def make_optimizer(learning_rate: float) -> keras.optimizers.Optimizer:
    return FusedAdam(learning_rate)
