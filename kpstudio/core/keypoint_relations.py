"""Linear relations between keypoint coordinates, learned from the labels: a prior for reading
heatmaps.

Some coordinates follow others closely: in a mirror rig the same paw has the same x in the side
view and in the mirror; a head-fixed animal's nose is always near one spot; in a face the jaw
points follow each other. A heatmap that splits between look-alikes (the near and the far paw)
may answer at the wrong one, although another keypoint the model finds well says where it must
be. So for each coordinate (x or y of each keypoint) the labels give the one other coordinate
that predicts it best by a straight line, with the spread of what the line leaves
(`fit_relations`); the model's last layer (kpstudio.ml.soft_argmax.SoftArgmax) reads each map
a second time weighted by a Gaussian around what its relation says, and the run keeps that only
where its val images say so (kpstudio.ml.peak_reading, which has the measurements: on three
lp_mirror models, same weights each, val, 4.19 / 4.34 / 4.28 px without the prior, 3.47 / 3.75
/ 3.46 with it). No Qt, no TensorFlow.
"""

from __future__ import annotations

import numpy as np

AXES = "xy"
# A relation needs this many images where both keypoints are labeled: a line through fewer
# points says little about the next image.
MIN_SHARED = 8
FIELDS = ("keypoint", "axis", "source", "source_axis", "slope", "intercept", "sd")


def fit_relations(xy: np.ndarray, visible: np.ndarray, min_sd: float) -> list[list]:
    """For each keypoint k and axis a, the source coordinate (another keypoint's x or y) whose
    least-squares line predicts (k, a) with the smallest residual spread over the images where
    both are labeled. `xy` (N, K, 2) in the network's input pixels, `visible` (N, K) bool.
    Returns rows [keypoint, axis, source, source_axis, slope, intercept, sd] (sd: the residual
    standard deviation with two degrees of freedom taken off, at least `min_sd`); coordinates
    with no source shared by MIN_SHARED images get no row."""
    xy = np.asarray(xy, dtype=np.float64)
    visible = np.asarray(visible, dtype=bool) & np.isfinite(xy).all(axis=-1)
    n, k = visible.shape
    if n < MIN_SHARED or k < 2:
        return []
    coords = np.nan_to_num(xy.reshape(n, 2 * k))  # column 2 * keypoint + axis
    seen = np.repeat(visible, 2, axis=1).astype(np.float64)
    rows = []
    for target in range(2 * k):
        both = seen * seen[:, target : target + 1]  # (N, 2K): images with both labeled
        count = both.sum(axis=0)
        safe = np.maximum(count, 1.0)
        mean_s = (both * coords).sum(axis=0) / safe
        mean_t = (both * coords[:, target : target + 1]).sum(axis=0) / safe
        ds = (coords - mean_s) * both
        dt = (coords[:, target : target + 1] - mean_t) * both
        var_s, cov = (ds * ds).sum(axis=0), (ds * dt).sum(axis=0)
        slope = np.where(var_s > 1e-9, cov / np.maximum(var_s, 1e-9), 0.0)
        residual = ((dt - slope * ds) ** 2).sum(axis=0)
        sd = np.sqrt(residual / np.maximum(count - 2, 1))
        usable = count >= MIN_SHARED
        usable[2 * (target // 2) : 2 * (target // 2) + 2] = False  # never its own keypoint
        if not usable.any():
            continue
        source = int(np.argmin(np.where(usable, sd, np.inf)))
        rows.append([target // 2, target % 2, source // 2, source % 2,
                     float(slope[source]), float(mean_t[source] - slope[source] * mean_s[source]),
                     float(max(sd[source], min_sd))])  # fmt: skip
    return rows


def scaled(relations: list[list], factor: float) -> list[list]:
    """The relations with their spread widened `factor` times (the prior's strength)."""
    return [[*row[:6], row[6] * factor] for row in relations]


def describe(relations: list[list], keypoints: list[str], most: int = 3) -> str:
    """The tightest relations in words, for the run's notes."""
    def words(row) -> str:
        k, axis, source, source_axis, slope, intercept, sd = row
        what = f"{keypoints[k]} {AXES[axis]}"
        if abs(slope) < 0.05:  # the line is flat: the coordinate stays put
            return f"{what} stays near {AXES[axis]} = {intercept:.0f} px (±{sd:.1f} px)"
        return f"{what} follows {keypoints[source]} {AXES[source_axis]} (±{sd:.1f} px)"

    return "; ".join(words(row) for row in sorted(relations, key=lambda row: row[6])[:most])


def check_relations(relations, num_keypoints: int) -> str | None:
    """Why `relations` (from a model file) is not a valid list of rows for `num_keypoints`
    keypoints, or None when it is."""
    if not isinstance(relations, list | tuple) or len(relations) > 2 * num_keypoints:
        return f"relations must be a list of at most {2 * num_keypoints} rows"
    for row in relations:
        if not isinstance(row, list | tuple) or len(row) != len(FIELDS):
            return f"each relation must hold {len(FIELDS)} numbers ({', '.join(FIELDS)})"
        ints, floats = row[:4], row[4:]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints):
            return "a relation's keypoints and axes must be whole numbers"
        if not (0 <= ints[0] < num_keypoints and 0 <= ints[2] < num_keypoints
                and ints[1] in (0, 1) and ints[3] in (0, 1)):  # fmt: skip
            return "a relation names a keypoint or an axis the model does not have"
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)
                   for v in floats) or not 0 < floats[2] < 1e6:  # fmt: skip
            return "a relation's slope, intercept and spread must be finite (spread above 0)"
    return None
