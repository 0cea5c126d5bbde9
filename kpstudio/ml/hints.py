"""Hints: keypoints the user has placed, given to a hint-conditioned model so that one
correction moves the other keypoints' answers (Click-Pose's idea, kpstudio.ml.models).

Training draws random hints from the labels themselves: half the examples get none (the model
must still work without), the others each a random share of their labeled points, so the
model learns to use however many the user happens to have placed.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

HINTED_SHARE = 0.5  # of the training examples that get any hint


def random_hints(xy, weight):
    """(B, K, 3) hints for a training batch: x, y (the true point, model-input pixels) and 1
    where that point is given, for a random subset of the labeled points."""
    shape = tf.shape(weight)
    give = tf.random.uniform([shape[0], 1]) < HINTED_SHARE
    share = tf.random.uniform([shape[0], 1])
    chosen = (tf.random.uniform(shape) < share) & give & (weight > 0)
    return tf.concat([xy, tf.cast(chosen, tf.float32)[..., None]], axis=-1)


def hint_array(keypoints, given: dict, to_input) -> np.ndarray:
    """(K, 3) hints in model-input pixels from {keypoint name: (x, y) original pixels};
    `to_input` maps original points (…, 2) to the model input (a Letterbox's to_input)."""
    out = np.zeros((len(keypoints), 3), dtype=np.float32)
    for k, name in enumerate(keypoints):
        if name in given:
            out[k, :2] = to_input(np.asarray(given[name], dtype=np.float64))
            out[k, 2] = 1.0
    return out
