"""Training losses. Each returns one loss per example (B,); absent keypoints weigh 0."""

from __future__ import annotations

import tensorflow as tf

from kpstudio.ml.models import HEATMAP_SIGMA, HEATMAP_STRIDE, cell_centres

HEATMAP_WEIGHT = 1.0


def for_architecture(arch: str, input_size: int, stride: int = HEATMAP_STRIDE):
    if arch == "seed":
        return lambda outputs, xy, weight: seed_loss(outputs, xy, weight, input_size)
    return lambda outputs, xy, weight: default_loss(outputs, xy, weight, stride)


def seed_loss(outputs, xy, weight, input_size: int):
    """The article's loss: MSE on the coordinates (in units of the input size)."""
    diff = (outputs[..., :2] - xy) / float(input_size)
    per_kp = tf.reduce_sum(diff * diff, axis=-1) * weight
    return tf.reduce_sum(per_kp, axis=-1) / tf.cast(tf.shape(weight)[-1], tf.float32)


def default_loss(outputs, xy, weight, stride: int = HEATMAP_STRIDE):
    """Integral regression L1 on the soft-argmax coordinates (in heatmap cells) plus a KL term
    pulling each heatmap towards a Gaussian at the label. The L1 term alone trains the mean
    but lets maps stay diffuse or split; the KL term makes them peak early (faster training)
    and makes the confidence meaningful."""
    coords, heat = outputs
    diff = tf.abs(coords[..., :2] - xy) / stride
    l1 = tf.reduce_sum(tf.reduce_sum(diff, axis=-1) * weight, axis=-1)
    kl = heatmap_kl(heat, xy, weight, stride)
    k = tf.cast(tf.shape(weight)[-1], tf.float32)
    return (l1 + HEATMAP_WEIGHT * kl) / k


def heatmap_kl(heat, xy, weight, stride: int = HEATMAP_STRIDE):
    """Σ_k weight · KL(target_k ‖ softmax(heat_k)) per example, target_k a Gaussian of
    HEATMAP_SIGMA cells at keypoint k, normalised over the map.

    The Gaussian is separable, t = tx ⊗ ty with tx, ty normalised 1-D Gaussians, so
    KL = Σ tx·log tx + Σ ty·log ty − Σ t·logits + logsumexp(logits): only the last two terms
    touch the full (h, w) map of each keypoint, where the full-map version also built the
    target map, its log and the log-softmax (see SoftArgmax for the measured difference)."""
    shape = tf.shape(heat)
    log_tx = _log_gaussian(cell_centres(shape[2], stride), xy[..., 0], stride)  # (B, w, K)
    log_ty = _log_gaussian(cell_centres(shape[1], stride), xy[..., 1], stride)  # (B, h, K)
    tx, ty = tf.exp(log_tx), tf.exp(log_ty)
    entropy = tf.reduce_sum(tx * log_tx, axis=1) + tf.reduce_sum(ty * log_ty, axis=1)  # (B, K)
    cross = tf.reduce_sum(tf.reduce_sum(heat * tx[:, None], axis=2) * ty, axis=1)
    lse = tf.reduce_logsumexp(heat, axis=(1, 2))
    kl = entropy - cross + lse
    return tf.reduce_sum(kl * weight, axis=-1)


def _log_gaussian(centres, mean, stride: int):
    """log of a 1-D Gaussian over the cells, normalised to sum 1: (n,), (B, K) → (B, n, K)."""
    d = (centres[None, :, None] - mean[:, None, :]) / stride
    return tf.nn.log_softmax(-(d * d) / (2.0 * HEATMAP_SIGMA**2), axis=1)
