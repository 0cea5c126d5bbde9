"""Keypoint accuracy metrics in numpy: pixel error, PCK, NME, COCO OKS; per keypoint and per image.

Shapes: `pred` and `gt` are (N, K, 2) float arrays of x, y in pixels (N images, K keypoints);
`visible` is (N, K) bool and says which ground-truth keypoints count. Absent keypoints (NaN in
`gt`, or not visible) are left out of every metric; they never count as an error of 0.

Errors are distances, so the coordinate convention (pixel centre at .0 or .5, origin) does not
matter, but `pred` and `gt` must share it, and both must be in the same image's pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# COCO person keypoint sigmas (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles),
# as pycocotools' COCOeval uses them.
COCO_SIGMAS: np.ndarray = (
    np.array(
        [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]
    ) / 10.0
)  # fmt: skip


def _points(pred, gt, visible) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate shapes; returns float pred, gt and the mask of keypoints that count."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    visible = np.asarray(visible, dtype=bool)
    if gt.ndim != 3 or gt.shape[2] != 2:
        raise ValueError(f"gt must have shape (N, K, 2), got {gt.shape}")
    if pred.shape != gt.shape or visible.shape != gt.shape[:2]:
        raise ValueError(
            f"shapes disagree: pred {pred.shape}, gt {gt.shape}, visible {visible.shape}"
        )
    # A keypoint flagged visible but without coordinates was never labelled: leave it out.
    counted = visible & np.isfinite(gt).all(axis=2)
    missing = counted & ~np.isfinite(pred).all(axis=2)
    if missing.any():
        # Ignoring these would flatter the model; a NaN prediction usually means training diverged.
        raise ValueError(
            f"predictions are NaN or infinite for {int(missing.sum())} labelled keypoints "
            "(did training diverge?)"
        )
    return pred, gt, counted


def pixel_errors(pred, gt, visible) -> np.ndarray:
    """(N, K) euclidean error in pixels; NaN where the keypoint does not count."""
    pred, gt, counted = _points(pred, gt, visible)
    with np.errstate(invalid="ignore"):
        dist = np.hypot(pred[..., 0] - gt[..., 0], pred[..., 1] - gt[..., 1])
    return np.where(counted, dist, np.nan)


def bbox_diagonal(gt, visible) -> np.ndarray:
    """(N,) diagonal of the box around each image's labelled keypoints; 0 with fewer than 2."""
    gt = np.asarray(gt, dtype=np.float64)
    _, _, counted = _points(gt, gt, visible)
    lo = np.where(counted[..., None], gt, np.inf).min(axis=1)
    hi = np.where(counted[..., None], gt, -np.inf).max(axis=1)
    enough = counted.sum(axis=1) >= 2
    size = np.where(enough[:, None], hi - lo, 0.0)
    return np.hypot(size[:, 0], size[:, 1])


def _hits(errors, threshold) -> tuple[np.ndarray, np.ndarray]:
    """(hit, valid) masks; threshold is a scalar or (N,) per image, NaN excluding that image."""
    errors = np.asarray(errors, dtype=np.float64)
    if errors.ndim != 2:
        raise ValueError(f"errors must have shape (N, K), got {errors.shape}")
    thr = np.asarray(threshold, dtype=np.float64)
    if thr.ndim == 1:
        if thr.shape[0] != errors.shape[0]:
            raise ValueError(f"{thr.shape[0]} thresholds for {errors.shape[0]} images")
        thr = thr[:, None]
    elif thr.ndim != 0:
        raise ValueError(f"threshold must be a number or one per image, got {thr.shape}")
    thr = np.broadcast_to(thr, errors.shape)
    valid = ~np.isnan(errors) & ~np.isnan(thr)
    with np.errstate(invalid="ignore"):
        hit = valid & (errors <= thr)  # inclusive: an error exactly at the threshold is correct
    return hit, valid


def pck(errors, threshold) -> float:
    """Fraction of counted keypoints with error <= threshold (NaN if none count)."""
    hit, valid = _hits(errors, threshold)
    n = int(valid.sum())
    return float(hit.sum() / n) if n else float("nan")


def pck_curve(pred, gt, visible, alphas: Sequence[float]) -> list[float | None]:
    """PCK at each alpha × the labelled bbox diagonal (images with fewer than 2 labelled
    keypoints left out): the curve that shows how close "close" is, beyond one threshold."""
    errors = pixel_errors(pred, gt, visible)
    diagonal = bbox_diagonal(gt, visible)
    norm = np.where(diagonal > 0, diagonal, np.nan)
    return [_number(pck(errors, a * norm)) for a in alphas]


def pck_per_keypoint(errors, threshold) -> np.ndarray:
    """(K,) PCK of each keypoint; NaN for a keypoint that never counts."""
    hit, valid = _hits(errors, threshold)
    n = valid.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, hit.sum(axis=0) / n, np.nan)


def nme(errors, norm) -> float:
    """Normalised mean error: each image's mean error / its normaliser, averaged over images.

    Images with no counted keypoint, or a normaliser that is NaN or <= 0, are left out.
    """
    errors = np.asarray(errors, dtype=np.float64)
    norm = np.broadcast_to(np.asarray(norm, dtype=np.float64), errors.shape[:1])
    valid = ~np.isnan(errors)
    n = valid.sum(axis=1)
    per_image_mean = np.where(valid, errors, 0.0).sum(axis=1) / np.maximum(n, 1)
    keep = (n > 0) & (norm > 0)  # NaN > 0 is False
    return float(np.mean(per_image_mean[keep] / norm[keep])) if keep.any() else float("nan")


def oks(pred, gt, visible, areas, sigmas) -> np.ndarray:
    """(N,) COCO object keypoint similarity, computed exactly as pycocotools' computeOks.

    `areas` is each object's area in px² (COCO uses the segment area), `sigmas` the (K,)
    per-keypoint constants (e.g. COCO_SIGMAS). NaN for an image with no counted keypoint.
    """
    pred, gt, counted = _points(pred, gt, visible)
    areas = np.broadcast_to(np.asarray(areas, dtype=np.float64), gt.shape[:1])
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if sigmas.shape != gt.shape[1:2]:
        raise ValueError(f"{sigmas.shape[0]} sigmas for {gt.shape[1]} keypoints")
    variances = (2 * sigmas) ** 2
    with np.errstate(invalid="ignore"):
        d2 = ((pred - gt) ** 2).sum(axis=2)
        e = d2 / variances / (areas[:, None] + np.spacing(1)) / 2
    n = counted.sum(axis=1)
    total = np.where(counted, np.exp(-np.where(counted, e, 0.0)), 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan)


def _number(x) -> float | None:
    """Plain float for JSON; NaN and infinities (metrics of nothing) become None."""
    x = float(x)
    return x if np.isfinite(x) else None


def _stats(errors: np.ndarray, thresholds: dict[str, np.ndarray | float]) -> dict:
    """Count, mean, median and PCKs over all of the (N, K) `errors` (NaN = not counted)."""
    values = errors[~np.isnan(errors)]
    out: dict = {
        "count": int(values.size),
        "mean_px": _number(values.mean()) if values.size else None,
        "median_px": _number(np.median(values)) if values.size else None,
    }
    for key, thr in thresholds.items():
        out[key] = _number(pck(errors, thr))
    return out


def summarize(
    pred,
    gt,
    visible,
    keypoint_names: Sequence[str],
    alphas: Sequence[float] = (0.05, 0.1),
    px_thresholds: Sequence[float] = (5.0,),
) -> dict:
    """JSON-friendly summary: overall, "per_keypoint" {name: ...} and "per_image" [...].

    Each level has count, mean_px, median_px, f"pck@{alpha}" (threshold alpha x the image's
    labelled-keypoint bbox diagonal; images with fewer than 2 labelled keypoints are left out)
    and f"pck@{t}px". Values are plain floats, None where nothing was counted.
    """
    errors = pixel_errors(pred, gt, visible)
    n_images, n_kp = errors.shape
    if len(keypoint_names) != n_kp:
        raise ValueError(f"{len(keypoint_names)} keypoint names for {n_kp} keypoints")
    diagonal = bbox_diagonal(gt, visible)
    per_image_thr: dict[str, np.ndarray | float] = {
        f"pck@{a}": np.where(diagonal > 0, a * diagonal, np.nan) for a in alphas
    }
    per_image_thr.update({f"pck@{t}px": float(t) for t in px_thresholds})

    summary = {"images": n_images, **_stats(errors, per_image_thr)}
    summary["per_keypoint"] = {
        name: _stats(errors[:, [k]], per_image_thr) for k, name in enumerate(keypoint_names)
    }
    summary["per_image"] = [
        _stats(
            errors[[i]],
            {key: (thr if np.ndim(thr) == 0 else thr[[i]]) for key, thr in per_image_thr.items()},
        )
        for i in range(n_images)
    ]
    return summary
