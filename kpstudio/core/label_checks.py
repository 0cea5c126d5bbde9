"""As-you-click sanity hints: a left/right pair that looks swapped, a bone of unusual length.

Hints compare the instance being labeled with the user's other labels and never block anything:
a swapped pair or a stretched bone may be right (a mouse seen from below is mirrored), so the
studio shows them as hints. Every check wants enough reference labels to be sure and stays quiet
otherwise, and every comparison is unchanged by where the animal is, how it is turned and how
large it appears, so a zoomed-in or rotated image never warns on its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from kpstudio.core.labelset import Instance
from kpstudio.core.skeleton import Skeleton

MIN_REFERENCES = 3
# Share of reference instances whose left/right order must disagree with the current one.
SWAP_MAJORITY = 0.8
# Sine of the angle between the pair and the body direction below which the side is unclear.
MIN_SIDE_SINE = 0.15
BONE_RATIO_RANGE = (0.5, 2.0)
# Pairs of keypoints a scale estimate needs, so it is a median and not one distance.
MIN_SCALE_PAIRS = 3

Hint = tuple[tuple[str, str], str]  # (the keypoints concerned, the message)


def _points(inst: Instance, k: int) -> np.ndarray:
    """(K, 2) coordinates with NaN wherever the keypoint is absent or not finite."""
    xy = np.asarray(inst.xy, dtype=np.float64).reshape(k, 2).copy()
    vis = np.asarray(inst.visibility).reshape(k)
    xy[(vis <= 0) | ~np.isfinite(xy).all(axis=1)] = np.nan
    return xy


def sanity_warnings(
    skeleton: Skeleton, current: Instance, others: list[Instance]
) -> dict[str, str]:
    """Keypoint name → a short message for each hint about `current`; empty when all looks fine.

    `others` are the labeled instances to compare with (other images of the project); absent
    keypoints (visibility 0 or NaN) are ignored everywhere.
    """
    k = len(skeleton)
    cur = _points(current, k)
    refs = np.stack([_points(o, k) for o in others]) if others else np.empty((0, k, 2))
    messages: dict[str, list[str]] = {}
    for names, text in [*_swap_hints(skeleton, cur, refs), *_bone_hints(skeleton, cur, refs)]:
        for name in names:
            messages.setdefault(name, []).append(text)
    return {name: "; ".join(texts) for name, texts in messages.items()}


def _swap_hints(skeleton: Skeleton, cur: np.ndarray, refs: np.ndarray) -> Iterator[Hint]:
    """Pairs whose right point lies on the other side of the left one than on most others.

    The side is the sign of the cross product of left→right with the direction from the pair's
    midpoint to the centroid of the other keypoints: rotation, shift and scale keep it, a
    mirror (or a swap) flips it. The centroid uses only keypoints labeled on both instances
    compared, so a keypoint missing on one of them cannot move it.
    """
    labeled = np.isfinite(cur).all(axis=1)
    ref_labeled = np.isfinite(refs).all(axis=2)  # (N, K)
    for left, right in skeleton.flip_pairs:
        li, ri = skeleton.index(left), skeleton.index(right)
        if not (labeled[li] and labeled[ri]):
            continue
        common = labeled[None] & ref_labeled
        common[:, [li, ri]] = False
        usable = ref_labeled[:, li] & ref_labeled[:, ri] & common.any(axis=1)
        if usable.sum() < MIN_REFERENCES:
            continue
        mask, used = common[usable], refs[usable]
        side_cur = _side(np.broadcast_to(cur, used.shape), li, ri, mask)
        side_ref = _side(used, li, ri, mask)
        voted = (side_cur != 0) & (side_ref != 0)
        votes = int(voted.sum())
        disagree = int((voted & (side_cur != side_ref)).sum())
        if votes >= MIN_REFERENCES and disagree >= SWAP_MAJORITY * votes:
            # votes >= 3 here, so "images" is always plural.
            yield (
                (left, right),
                (f"{left} and {right} look swapped compared with {disagree} other images"),
            )


def _side(xy: np.ndarray, li: int, ri: int, mask: np.ndarray) -> np.ndarray:
    """+1 / -1 for the side of each instance's pair; 0 where the pair is nearly along the body.

    xy: (N, K, 2) instances; mask: (N, K) the keypoints forming each instance's body centroid.
    """
    centroid = np.where(mask[..., None], xy, 0.0).sum(axis=1) / mask.sum(axis=1)[:, None]
    pair = xy[:, ri] - xy[:, li]
    body = centroid - (xy[:, li] + xy[:, ri]) / 2
    cross = pair[:, 0] * body[:, 1] - pair[:, 1] * body[:, 0]
    norms = np.linalg.norm(pair, axis=1) * np.linalg.norm(body, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sine = np.where(norms > 0, cross / norms, 0.0)
    return np.where(np.abs(sine) >= MIN_SIDE_SINE, np.sign(sine), 0.0)


def _pair_distances(xy: np.ndarray) -> np.ndarray:
    """(..., K, K) distances between keypoints; NaN where either is absent."""
    return np.linalg.norm(xy[..., :, None, :] - xy[..., None, :, :], axis=-1)


def _bone_hints(skeleton: Skeleton, cur: np.ndarray, refs: np.ndarray) -> Iterator[Hint]:
    """Bones far longer or shorter than on the other instances, once sizes are matched.

    Each reference is brought to the current instance's size by the median ratio of all
    keypoint-to-keypoint distances the two share: a median, because one misplaced keypoint
    changes only 2/K of those distances, and all of them, because a skeleton may have too few
    bones to outvote the one being judged.
    """
    if not skeleton.edges or len(refs) < MIN_REFERENCES:
        return
    k = len(skeleton)
    upper = np.triu(np.ones((k, k), dtype=bool), 1)
    d_cur = _pair_distances(cur)[upper]  # (P,)
    d_ref = _pair_distances(refs)[:, upper]  # (N, P)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.where((d_cur > 0) & (d_ref > 0), d_cur / d_ref, np.nan)
    enough = np.isfinite(ratios).sum(axis=1) >= MIN_SCALE_PAIRS
    if enough.sum() < MIN_REFERENCES:
        return
    scale = np.full(len(refs), np.nan)
    scale[enough] = np.nanmedian(ratios[enough], axis=1)
    pair_index = -np.ones((k, k), dtype=int)
    pair_index[upper] = np.arange(int(upper.sum()))
    low, high = BONE_RATIO_RANGE
    for a, b in skeleton.edges:
        ia, ib = sorted((skeleton.index(a), skeleton.index(b)))
        p = pair_index[ia, ib]
        length = d_cur[p]
        if not np.isfinite(length):
            continue
        expected = d_ref[:, p] * scale  # each reference's bone at the current size
        expected = expected[np.isfinite(expected) & (expected > 0)]
        if len(expected) < MIN_REFERENCES:
            continue
        ratio = length / float(np.median(expected))
        if ratio > high:
            yield (a, b), f"{a}–{b} is {ratio:.1f}× its usual length"
        elif ratio < low:
            yield (a, b), f"{a}–{b} is only {ratio:.2f}× its usual length"
