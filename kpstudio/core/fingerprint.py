"""The fingerprint of a label set: the few figures that decide how a model should see the data.

Frame sizes, the size of the labeled objects, keypoints per object, the typical distance of the
closest keypoints, visibility, instances per image. Robust statistics throughout (medians and
percentiles), so a handful of odd labels cannot swing a plan. No Qt, no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

# A pair of keypoints sets the detail the model needs only when the two are usually labeled
# together: in at least this share of the objects.
PAIR_SHARE = 0.5
# Pair distances are computed on at most this many objects, spread evenly over the set
# (K² distances per object: 68 keypoints × 10,000 objects would not fit in memory).
MAX_OBJECTS_FOR_PAIRS = 2000


@dataclass(frozen=True)
class Fingerprint:
    keypoints: tuple[str, ...]
    images: int  # labeled images
    objects: int  # labeled instances over all images
    frame_side: float  # median of each frame's longer side, px
    frame_width: float  # median width
    frame_height: float  # median height
    frame_side_range: tuple[float, float]  # shortest and longest of the longer sides
    # Longer side of the box around each object's labeled keypoints, px: 5th percentile, median,
    # 95th percentile (objects with two or more labeled keypoints).
    object_span: dict = field(default_factory=dict)
    keypoints_per_object: float = 0.0  # median number of labeled keypoints per object
    labeled_share: float = 0.0  # labeled (visible or occluded) / all object keypoints
    occluded_share: float = 0.0  # occluded / labeled
    keypoint_share: dict = field(default_factory=dict)  # per keypoint: share of objects labeled
    objects_per_image: dict = field(default_factory=dict)  # median, mean, max
    # The closest pair among those usually labeled together: its names and its typical
    # distance (median over the objects where both are labeled), px; None without such pairs.
    closest_pair: dict | None = None
    flip_pairs: int = 0  # left/right pairs in the skeleton

    def to_dict(self) -> dict:
        return asdict(self)


def fingerprint(
    keypoints: Iterable[str], images: Iterable[tuple[int, int, list]], flip_pairs: int = 0
) -> Fingerprint:
    """The fingerprint of labeled images given as (width, height, [(xy (K, 2), visibility (K,)),
    ...]) with NaN xy and visibility 0 where a keypoint is absent. Images without a labeled
    keypoint do not count."""
    names = tuple(keypoints)
    k = len(names)
    sizes, counts, xys, vis = [], [], [], []
    for width, height, instances in images:
        labeled = [(np.asarray(xy, float), np.asarray(v)) for xy, v in instances if np.any(v > 0)]
        if not labeled:
            continue
        sizes.append((width, height))
        counts.append(len(labeled))
        for xy, v in labeled:
            xys.append(np.where((v > 0)[:, None], xy.reshape(k, 2), np.nan))
            vis.append(v.reshape(k))
    if not sizes:
        raise ValueError("no labeled images: nothing to plan from")
    size = np.array(sizes, dtype=float)
    xy, v = np.array(xys), np.array(vis, dtype=np.int8)
    labeled = v > 0
    sides = size.max(axis=1)
    return Fingerprint(
        keypoints=names, images=len(sizes), objects=len(xy),
        frame_side=float(np.median(sides)), frame_width=float(np.median(size[:, 0])),
        frame_height=float(np.median(size[:, 1])),
        frame_side_range=(float(sides.min()), float(sides.max())),
        object_span=_object_span(xy, labeled),
        keypoints_per_object=float(np.median(labeled.sum(axis=1))),
        labeled_share=float(labeled.mean()),
        occluded_share=float((v == 1).sum() / max(1, labeled.sum())),
        keypoint_share={n: round(float(s), 3) for n, s in zip(names, labeled.mean(axis=0))},
        objects_per_image={"median": float(np.median(counts)), "mean": float(np.mean(counts)),
                           "max": int(max(counts))},  # fmt: skip
        closest_pair=_closest_pair(names, xy, labeled),
        flip_pairs=flip_pairs,
    )  # fmt: skip


def _object_span(xy: np.ndarray, labeled: np.ndarray) -> dict:
    enough = labeled.sum(axis=1) >= 2
    if not enough.any():
        return {}
    pts = xy[enough]
    span = np.nanmax(np.nanmax(pts, axis=1) - np.nanmin(pts, axis=1), axis=1)
    p5, p50, p95 = np.percentile(span, [5, 50, 95])
    return {"p5": float(p5), "median": float(p50), "p95": float(p95)}


def _closest_pair(names: tuple[str, ...], xy: np.ndarray, labeled: np.ndarray) -> dict | None:
    """Per pair labeled together in ≥ PAIR_SHARE of the objects, the median distance over those
    objects; the pair with the smallest. The median, not a low percentile: pairs that only
    meet now and then (paws passing each other) should not set the scale, pairs that usually
    sit close (two ears, two fingers) should."""
    k = len(names)
    if k < 2:
        return None
    if len(xy) > MAX_OBJECTS_FOR_PAIRS:  # evenly spread, so the result stays deterministic
        pick = np.linspace(0, len(xy) - 1, MAX_OBJECTS_FOR_PAIRS).round().astype(int)
        xy, labeled = xy[pick], labeled[pick]
    pts = xy.astype(np.float32)
    dist = np.linalg.norm(pts[:, :, None, :] - pts[:, None, :, :], axis=-1)  # (M, K, K), NaN
    both = labeled[:, :, None] & labeled[:, None, :]
    frequent = both.mean(axis=0) >= PAIR_SHARE
    frequent &= np.triu(np.ones((k, k), dtype=bool), 1)
    if not frequent.any():
        return None
    a_idx, b_idx = np.nonzero(frequent)
    typical = np.array([np.nanmedian(dist[both[:, a, b], a, b]) for a, b in zip(a_idx, b_idx)])
    best = int(np.argmin(typical))  # first of equals: deterministic
    a, b = int(a_idx[best]), int(b_idx[best])
    return {"a": names[a], "b": names[b], "distance": float(typical[best])}


def from_labelset(labels) -> Fingerprint:
    """Fingerprint of a LabelSet (an annotation file read by kpstudio.core.formats)."""
    return fingerprint(
        labels.skeleton.keypoints,
        ((im.width, im.height, [(i.xy, i.visibility) for i in im.instances])
         for im in labels.images),
        len(labels.skeleton.flip_pairs),
    )  # fmt: skip


def from_project(project) -> Fingerprint:
    """Fingerprint of a project's labeled images, every instance of each."""
    skeleton = project.skeleton
    if skeleton is None:
        raise ValueError(f"project {project.folder} has no skeleton: nothing to plan from")
    images = (
        (r.width, r.height, [(i.xy, i.visibility) for i in project.instances(r.id)])
        for r in project.images()
        if r.status in ("partial", "done")
    )
    return fingerprint(skeleton.keypoints, images, len(skeleton.flip_pairs))
