"""Evaluation in original image pixels: px error, PCK, per keypoint and per image."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kpstudio.core.image_reader import read_image
from kpstudio.core.letterbox import letterbox_image
from kpstudio.core.metrics import pck_curve, pixel_errors, summarize
from kpstudio.core.training_set import TrainingSet
from kpstudio.ml.dataset import Letterboxed
from kpstudio.ml.events import Preview

ALPHAS = (0.05, 0.1)  # PCK thresholds as fractions of the labeled bounding-box diagonal
PX_THRESHOLDS = (5.0,)
CURVE_ALPHAS = tuple(round(0.01 * i, 2) for i in range(21))  # PCK curve: 0 … 0.2 of the diagonal


def make_infer(model, jit_compile: bool = False):
    """A compiled inference function: (B, S, S, 3) float32 → (B, K, 3). Far cheaper per call
    than model.predict, which is what interactive and per-epoch evaluation need."""
    return tf.function(lambda images: model(images, training=False), jit_compile=jit_compile)


def predict_letterboxed(infer, cache: Letterboxed, indices, batch_size: int = 32) -> np.ndarray:
    """Predictions (len(indices), K, 3) with x, y mapped back to original image pixels."""
    out = []
    indices = np.asarray(indices, dtype=np.int64)
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        batch = cache.images[chunk].astype(np.float32)
        pred = infer(tf.constant(batch)).numpy()
        for row, i in zip(pred, chunk):
            xy = cache.boxes[i].to_original(row[:, :2])
            out.append(np.concatenate([xy, row[:, 2:3]], axis=-1))
    k = cache.xy.shape[1]
    return np.array(out, dtype=np.float64).reshape(-1, k, 3)


def mean_px_error(pred: np.ndarray, data: TrainingSet, indices) -> float:
    """Mean px error over the labeled keypoints of `indices` (NaN when none)."""
    errors = pixel_errors(pred[..., :2], data.xy[indices], data.visibility[indices] > 0)
    return float(np.nanmean(errors)) if np.isfinite(errors).any() else float("nan")


def evaluation_report(pred: np.ndarray, data: TrainingSet, indices) -> dict:
    """The stored evaluation: mean / median px, PCK@0.05 / 0.1 of the bbox diagonal, PCK@5 px,
    per keypoint and per image (with image ids)."""
    indices = np.asarray(indices, dtype=np.int64)
    gt, visible = data.xy[indices].astype(np.float64), data.visibility[indices] > 0
    report = summarize(pred[..., :2], gt, visible, list(data.skeleton.keypoints),
                       alphas=ALPHAS, px_thresholds=PX_THRESHOLDS)  # fmt: skip
    for entry, i in zip(report.get("per_image", []), indices):
        entry["image_id"] = int(data.image_ids[i])
    report["mean_confidence"] = float(np.mean(pred[..., 2])) if len(pred) else None
    report["pck_curve"] = {"alpha": list(CURVE_ALPHAS),
                           "pck": pck_curve(pred[..., :2], gt, visible, CURVE_ALPHAS)}  # fmt: skip
    return report


def preview_loader(path: str | None):
    """Predictions on the preview image (any image, labeled or not), reported every epoch:
    predict(infer, input size) -> Preview, or None without a preview image."""
    if not path:
        return lambda infer, size: None
    cached = {}

    def predict(infer, size) -> Preview:
        if "canvas" not in cached:
            cached["canvas"], cached["box"] = letterbox_image(read_image(path), size)
        out = infer(tf.constant(cached["canvas"][None].astype(np.float32))).numpy()[0]
        xy = cached["box"].to_original(out[:, :2])
        return Preview(str(path), tuple((float(x), float(y)) for x, y in xy),
                       tuple(float(c) for c in out[:, 2]))  # fmt: skip

    return predict
