"""Evaluating models that find several objects per image: OKS matching, px error on matched
objects, and COCO keypoint AP / AR computed by pycocotools' COCOeval.

A predicted object is matched to a labeled one by OKS (object keypoint similarity, exactly as
COCO computes it: kpstudio.core.metrics.oks), one to one, best pairs first; a pair counts when
its OKS reaches MATCH_OKS. Pixel errors and PCK are then those of the matched pairs, and how
many labeled objects (and how many images with all their objects) were found is reported
beside them. No Qt, no TensorFlow.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np

from kpstudio.core.metrics import oks, summarize

OKS_SIGMA = 0.05  # per keypoint, unless the skeleton sets its own
MATCH_OKS = 0.5  # COCO's loosest AP threshold: below it a prediction is not that object


def object_area(xy: np.ndarray, visible: np.ndarray) -> float:
    """The area of an object's labeled keypoints' box (px², at least 1): COCO's object scale
    where there is no segmentation."""
    pts = xy[visible]
    if len(pts) < 2:
        return 1.0
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return float(max(1.0, np.prod(hi - lo)))


def match_objects(found: Sequence, truth_xy: np.ndarray, truth_vis: np.ndarray,
                  sigmas: np.ndarray) -> list[tuple[int, int, float]]:  # fmt: skip
    """One-to-one pairs (found index, labeled index, OKS) with OKS ≥ MATCH_OKS, best first.

    `found`: [(xy (K, 2), confidence (K,), score)]; truth_xy (M, K, 2), truth_vis (M, K)
    (objects without a labeled keypoint are ignored)."""
    labeled = [m for m in range(len(truth_xy)) if (truth_vis[m] > 0).any()]
    if not found or not labeled:
        return []
    table = np.zeros((len(found), len(labeled)))
    for j, m in enumerate(labeled):
        vis = truth_vis[m] > 0
        area = object_area(truth_xy[m], vis)
        preds = np.stack([np.asarray(f[0], dtype=np.float64) for f in found])
        gt = np.broadcast_to(truth_xy[m], preds.shape)
        table[:, j] = np.nan_to_num(oks(preds, gt, np.broadcast_to(vis, preds.shape[:2]),
                                        area, sigmas))  # fmt: skip
    pairs = []
    while True:
        i, j = np.unravel_index(int(np.argmax(table)), table.shape)
        if table[i, j] < MATCH_OKS:
            return pairs
        pairs.append((int(i), labeled[j], float(table[i, j])))
        table[i, :], table[:, j] = -1.0, -1.0


def evaluate_found(found_per_image: Sequence[Sequence], data, indices) -> dict:
    """evaluate_instances of a model's Predictions (`found_per_image[n]`: the objects found on
    image `indices[n]` of the TrainingSet `data`) against every labeled object there."""
    xy, vis = data.objects()
    return evaluate_instances(
        [[(p.xy, p.confidence, p.score) for p in objects] for objects in found_per_image],
        xy[indices], vis[indices], list(data.skeleton.keypoints),
        [data.image_ids[i] for i in indices],
    )  # fmt: skip


def evaluate_instances(found_per_image: Sequence[Sequence], truth_xy: np.ndarray,
                       truth_vis: np.ndarray, keypoints: Sequence[str],
                       image_ids: Sequence[int] | None = None,
                       sigmas: np.ndarray | None = None) -> dict:  # fmt: skip
    """The stored evaluation of a multi-object model over N images: truth_xy (N, M, K, 2),
    truth_vis (N, M, K), `found_per_image[n]` = [(xy, confidence, score), ...] in original
    pixels. Keys as the single-object report (mean_px, median_px, pck@…, per_keypoint) over the
    matched objects, plus objects, objects_found, images_all_found, found_per_image_mean,
    ap, ap50, ar (None without pycocotools) and matched_oks_mean."""
    k = len(keypoints)
    sigmas = np.full(k, OKS_SIGMA) if sigmas is None else np.asarray(sigmas, dtype=np.float64)
    pred, gt, vis, per_image = [], [], [], []
    objects = found_objects = all_found = 0
    scores = []
    for n, found in enumerate(found_per_image):
        pairs = match_objects(found, truth_xy[n], truth_vis[n], sigmas)
        labeled = int((truth_vis[n] > 0).any(axis=-1).sum())
        objects += labeled
        found_objects += len(pairs)
        all_found += len(pairs) == labeled
        scores.extend(o for _, _, o in pairs)
        errors = []
        for i, m, _ in pairs:
            pred.append(np.asarray(found[i][0], dtype=np.float64))
            gt.append(np.nan_to_num(truth_xy[n, m]).astype(np.float64))
            vis.append(truth_vis[n, m] > 0)
            errors.extend(np.linalg.norm(pred[-1] - gt[-1], axis=-1)[vis[-1]])
        image_id = None if image_ids is None else int(image_ids[n])
        per_image.append({"image_id": image_id, "objects": labeled, "found": len(found),
                          "matched": len(pairs),
                          "mean_px": float(np.mean(errors)) if errors else None})  # fmt: skip
    if pred:
        report = summarize(np.stack(pred), np.stack(gt), np.stack(vis), list(keypoints))
        report.pop("per_image", None)
    else:
        report = {"count": 0, "mean_px": None, "median_px": None}
    report.update({
        "images": len(found_per_image), "objects": objects, "objects_found": found_objects,
        "images_all_found": all_found / max(1, len(found_per_image)),
        "found_per_image_mean": float(np.mean([len(f) for f in found_per_image]))
        if len(found_per_image) else None,
        "matched_oks_mean": float(np.mean(scores)) if scores else None,
        "per_image": per_image, "oks_sigma": float(sigmas[0]) if k else None,
    })  # fmt: skip
    report.update(coco_ap(found_per_image, truth_xy, truth_vis, list(keypoints), sigmas))
    return report


def coco_ap(found_per_image, truth_xy, truth_vis, keypoints, sigmas) -> dict:
    """{"ap", "ap50", "ar"}: pycocotools' COCOeval keypoint AP (OKS 0.5:0.95), AP at OKS 0.5
    and AR, of the found objects against every labeled one; None each without pycocotools."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        return {"ap": None, "ap50": None, "ar": None}
    k = len(keypoints)
    images, objects, results = [], [], []
    for n, found in enumerate(found_per_image):
        images.append({"id": n + 1})
        for m in range(len(truth_xy[n])):
            labeled = truth_vis[n, m] > 0
            if not labeled.any():
                continue
            pts = np.zeros((k, 3))
            pts[labeled, :2] = truth_xy[n, m][labeled]
            pts[labeled, 2] = truth_vis[n, m][labeled]
            lo, hi = truth_xy[n, m][labeled].min(0), truth_xy[n, m][labeled].max(0)
            objects.append({"id": len(objects) + 1, "image_id": n + 1, "category_id": 1,
                            "keypoints": pts.ravel().tolist(), "iscrowd": 0,
                            "num_keypoints": int(labeled.sum()),
                            "bbox": [*lo.tolist(), *(hi - lo).tolist()],
                            "area": object_area(truth_xy[n, m], labeled)})  # fmt: skip
        for xy, _conf, score in found:
            pts = np.c_[np.nan_to_num(np.asarray(xy, dtype=np.float64)), np.ones(k)]
            results.append({"image_id": n + 1, "category_id": 1,
                            "keypoints": pts.ravel().tolist(), "score": float(score)})  # fmt: skip
    if not objects or not results:
        return {"ap": 0.0 if objects else None, "ap50": 0.0 if objects else None,
                "ar": 0.0 if objects else None}  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):  # COCO prints its progress
        truth = COCO()
        truth.dataset = {"images": images, "annotations": objects,
                         "categories": [{"id": 1, "name": "object", "keypoints": keypoints}]}
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), "keypoints")
        evaluation.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = evaluation.stats
    return {"ap": float(stats[0]), "ap50": float(stats[1]), "ar": float(stats[5])}
