"""Top-down models: a finder proposes each object's centre on the whole frame at a low
resolution; the pose model (the default architecture) sees a crop around each centre.

This is how SLEAP's and mmpose's top-down pipelines work, and what several objects per image
need: the single-instance soft-argmax head averages over every object it sees, a crop centred
on one object makes that object the one to locate. The finder is the default architecture with
one heatmap channel, trained as CenterNet's centre heatmap (a Gaussian at each object's centre,
penalty-reduced focal loss), so it finds any number of objects, each with a score.

Coordinates: everything here works on the pose-scale canvas (the frame letterboxed to the
plan's `input_size`, the "frame size" of a top-down model); callers map to original pixels
with that letterbox.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import tensorflow as tf

from kpstudio.ml.models import build_default, with_heatmaps

FINDER_STRIDE = 4  # the default architecture's heatmap stride
# The centre Gaussian's width in finder input pixels: an eighth of the typical object, which
# the plan makes FINDER_OBJECT_SPAN (48) pixels across, so 1.5 cells at stride 4.
FINDER_SIGMA = 6.0
PEAK_THRESHOLD = 0.2  # a centre probability below this is no object (CenterNet decodes at 0.1–0.3)
# Training crops are centred on the object with this much jitter (share of the crop side): the
# finder's centres are a few pixels off, and the pose model should not care.
CENTRE_JITTER = 0.05


@dataclass
class Found:
    """One object found on a canvas: keypoints in canvas pixels, their confidence, a score."""

    xy: np.ndarray  # (K, 2)
    confidence: np.ndarray  # (K,)
    score: float


def object_centres(xy: np.ndarray, visibility: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centres (..., 2), valid (...)): the middle of each object's labeled keypoints' box.
    xy (..., K, 2), visibility (..., K); objects without a labeled keypoint are not valid."""
    labeled = visibility > 0
    big = np.float32(1e9)
    lo = np.where(labeled[..., None], xy, big).min(axis=-2)
    hi = np.where(labeled[..., None], xy, -big).max(axis=-2)
    valid = labeled.any(axis=-1)
    centres = np.where(valid[..., None], (lo + hi) / 2.0, 0.0).astype(np.float32)
    return centres, valid


def build_finder(input_size: int | None):
    """The finder: the default architecture with one channel (its weights are a plain default
    model's, so the model file checks them the same way)."""
    return build_default(1, input_size)


def finder_heat_model(finder):
    """The finder returning its centre logits (B, h, w, 1) only."""
    return tf.keras.Model(finder.inputs, with_heatmaps(finder).outputs[1])


def finder_loss(heat, centres, valid, stride: int = FINDER_STRIDE):
    """Penalty-reduced focal loss (CenterNet) per example (B,): heat (B, h, w, 1) logits,
    centres (B, M, 2) in finder input pixels, valid (B, M) 1 for a real object.

    The target is a Gaussian of FINDER_SIGMA pixels at each centre's cell (so the target is 1
    exactly at one cell per object), the maximum over objects."""
    shape = tf.shape(heat)
    h, w = shape[1], shape[2]
    cell = tf.floor(centres / stride)  # (B, M, 2)
    gx = tf.cast(tf.range(w), tf.float32)
    gy = tf.cast(tf.range(h), tf.float32)
    s2 = 2.0 * (FINDER_SIGMA / stride) ** 2
    dx = (gx[None, None, :] - cell[..., 0:1]) ** 2  # (B, M, w)
    dy = (gy[None, None, :] - cell[..., 1:2]) ** 2  # (B, M, h)
    g = tf.exp(-(dy[..., :, None] + dx[..., None, :]) / s2)  # (B, M, h, w)
    g = g * valid[..., None, None]
    target = tf.reduce_max(g, axis=1)  # (B, h, w)
    logits = heat[..., 0]
    p = tf.clip_by_value(tf.sigmoid(logits), 1e-4, 1.0 - 1e-4)
    positive = tf.cast(target > 0.999, tf.float32)
    pos = -tf.math.log(p) * (1.0 - p) ** 2 * positive
    neg = -tf.math.log(1.0 - p) * p**2 * (1.0 - target) ** 4 * (1.0 - positive)
    count = tf.maximum(tf.reduce_sum(positive, axis=[1, 2]), 1.0)
    return tf.reduce_sum(pos + neg, axis=[1, 2]) / count


def decode_peaks(prob: np.ndarray, threshold: float, max_objects: int, min_separation: float,
                 stride: int = FINDER_STRIDE) -> list[tuple[float, float, float]]:  # fmt: skip
    """Object centres (x, y, score) in finder input pixels from one (h, w) probability map:
    local maxima above `threshold`, refined to sub-cell by their 3×3 neighbourhood, strongest
    first, none closer than `min_separation` pixels to a stronger one, at most `max_objects`."""
    prob = np.asarray(prob, dtype=np.float32)
    peak = (prob >= cv2.dilate(prob, np.ones((3, 3), np.uint8))) & (prob >= threshold)
    ys, xs = np.nonzero(peak)
    order = np.argsort(-prob[ys, xs], kind="stable")
    out: list[tuple[float, float, float]] = []
    h, w = prob.shape
    for i in order:
        y, x = int(ys[i]), int(xs[i])
        y0, y1, x0, x1 = max(0, y - 1), min(h, y + 2), max(0, x - 1), min(w, x + 2)
        patch = prob[y0:y1, x0:x1]
        gy, gx = np.mgrid[y0:y1, x0:x1]
        total = float(patch.sum())
        cx = (float((gx * patch).sum()) / total + 0.5) * stride
        cy = (float((gy * patch).sum()) / total + 0.5) * stride
        if any((cx - a) ** 2 + (cy - b) ** 2 < min_separation**2 for a, b, _ in out):
            continue
        out.append((cx, cy, float(prob[y, x])))
        if len(out) >= max_objects:
            break
    return out


def crop_at(canvas: np.ndarray, centre, crop: int) -> tuple[np.ndarray, np.ndarray]:
    """(crop×crop×3 window of `canvas` centred on `centre`, zero outside; its top-left corner
    (2,) in canvas pixels). Integer placement: the pixels are the canvas's own."""
    origin = np.round(np.asarray(centre, dtype=np.float64) - crop / 2.0).astype(int)
    out = np.zeros((crop, crop, canvas.shape[2]), dtype=canvas.dtype)
    x0, y0 = origin
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(canvas.shape[1], x0 + crop), min(canvas.shape[0], y0 + crop)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = canvas[sy0:sy1, sx0:sx1]
    return out, origin.astype(np.float64)


class TopDownRunner:
    """Finder then pose on letterboxed canvases of the frame size.

    `finder_heat(batch)` (B, F, F, 3) float32 → (B, h, w, 1) logits; `pose(batch)` (B, c, c, 3)
    float32 → (B, K, 3) in crop pixels."""

    def __init__(self, finder_heat, pose, frame_size: int, finder_size: int, crop: int,
                 max_objects: int, min_separation: float,
                 threshold: float = PEAK_THRESHOLD):  # fmt: skip
        self.finder_heat, self.pose = finder_heat, pose
        self.frame_size, self.finder_size, self.crop = frame_size, finder_size, crop
        self.max_objects, self.min_separation = max_objects, min_separation
        self.threshold = threshold

    def centres(self, canvases: np.ndarray) -> list[list[tuple[float, float, float]]]:
        """Per canvas, the objects' centres (x, y, score) in canvas pixels."""
        f, s = self.finder_size, self.frame_size
        small = np.stack([cv2.resize(c, (f, f), interpolation=cv2.INTER_AREA) if f != s else c
                          for c in canvases])  # fmt: skip
        heat = np.asarray(self.finder_heat(tf.constant(small.astype(np.float32))))
        prob = 1.0 / (1.0 + np.exp(-heat[..., 0]))
        k = s / f
        return [[(x * k, y * k, score) for x, y, score in
                 decode_peaks(p, self.threshold, self.max_objects, self.min_separation / k)]
                for p in prob]  # fmt: skip

    def pose_at(self, canvases: np.ndarray, centres: list[list]) -> list[list[Found]]:
        """The pose model on a crop around each centre; keypoints in canvas pixels."""
        crops, origins, owner = [], [], []
        for i, found in enumerate(centres):
            for x, y, score in found:
                window, origin = crop_at(canvases[i], (x, y), self.crop)
                crops.append(window)
                origins.append(origin)
                owner.append((i, score))
        out: list[list[Found]] = [[] for _ in range(len(canvases))]
        if not crops:
            return out
        batch = np.stack(crops).astype(np.float32)
        pose = np.concatenate([np.asarray(self.pose(tf.constant(batch[j : j + 32])))
                               for j in range(0, len(batch), 32)])  # fmt: skip
        for row, origin, (i, score) in zip(pose, origins, owner):
            conf = row[:, 2].astype(np.float64)
            out[i].append(Found(row[:, :2].astype(np.float64) + origin, conf,
                                float(score * np.mean(conf))))  # fmt: skip
        for found in out:
            found.sort(key=lambda f: -f.score)
        return out

    def run(self, canvases: np.ndarray) -> list[list[Found]]:
        return self.pose_at(canvases, self.centres(canvases))
