"""Training losses. Each returns one loss per example (B,); absent keypoints weigh 0."""

from __future__ import annotations

import tensorflow as tf

from kpstudio.ml.models import HEATMAP_STRIDE

HEATMAP_SIGMA = 1.0  # target Gaussian width, in cells
HEATMAP_WEIGHT = 1.0


def for_architecture(arch: str, input_size: int):
    if arch == "seed":
        return lambda outputs, xy, weight: seed_loss(outputs, xy, weight, input_size)
    return default_loss


def seed_loss(outputs, xy, weight, input_size: int):
    """The article's loss: MSE on the coordinates (in units of the input size)."""
    diff = (outputs[..., :2] - xy) / float(input_size)
    per_kp = tf.reduce_sum(diff * diff, axis=-1) * weight
    return tf.reduce_sum(per_kp, axis=-1) / tf.cast(tf.shape(weight)[-1], tf.float32)


def default_loss(outputs, xy, weight):
    """Integral regression L1 on the soft-argmax coordinates (in heatmap cells) plus a KL term
    pulling each heatmap towards a Gaussian at the label. The L1 term alone trains the mean
    but lets maps stay diffuse or split; the KL term makes them peak early (faster training)
    and makes the confidence meaningful."""
    coords, heat = outputs
    diff = tf.abs(coords[..., :2] - xy) / HEATMAP_STRIDE
    l1 = tf.reduce_sum(tf.reduce_sum(diff, axis=-1) * weight, axis=-1)
    kl = _heatmap_kl(heat, xy, weight)
    k = tf.cast(tf.shape(weight)[-1], tf.float32)
    return (l1 + HEATMAP_WEIGHT * kl) / k


def _heatmap_kl(heat, xy, weight):
    shape = tf.shape(heat)
    h, w, k = shape[1], shape[2], shape[3]
    logits = tf.reshape(tf.transpose(heat, (0, 3, 1, 2)), (-1, k, h * w))
    log_p = tf.nn.log_softmax(logits, axis=-1)
    # Cell centres in input pixels, as SoftArgmax places them.
    xs = (tf.cast(tf.range(w), tf.float32) + 0.5) * HEATMAP_STRIDE
    ys = (tf.cast(tf.range(h), tf.float32) + 0.5) * HEATMAP_STRIDE
    dx = (xs[None, None, None, :] - xy[:, :, 0, None, None]) / HEATMAP_STRIDE
    dy = (ys[None, None, :, None] - xy[:, :, 1, None, None]) / HEATMAP_STRIDE
    g = tf.exp(-(dx * dx + dy * dy) / (2.0 * HEATMAP_SIGMA**2))
    g = tf.reshape(g, (-1, k, h * w))
    target = g / (tf.reduce_sum(g, axis=-1, keepdims=True) + 1e-12)
    kl = tf.reduce_sum(target * (tf.math.log(target + 1e-12) - log_p), axis=-1)
    return tf.reduce_sum(kl * weight, axis=-1)
