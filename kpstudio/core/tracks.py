"""Keypoint tracks over a video's frames: smoothing, and scores for frames the model got wrong.

A track is xy (T, K, 2) with a confidence (T, K) per frame. Everything here is numpy only and
takes its thresholds from the track itself or from the frame rate, never from one dataset.

Smoothing (`smooth_track`) is offline-exact but streamable: the value at frame t depends only on
frames [t - radius, t + radius], so `StreamingSmoother` can emit frames a fixed delay behind the
newest one with results identical to smoothing the whole track at once, in flat memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

# A normal distribution's standard deviation is 1.4826 × its median absolute deviation.
MAD_TO_SD = 1.4826
# How far below its neighbours' typical confidence a point must fall to count as missing, in
# robust standard deviations (the usual outlier cut) ...
LOW_CONFIDENCE_Z = 3.0
# ... and, so a model whose confidences barely vary does not drop points over noise, below this
# share of that typical confidence too.
LOW_CONFIDENCE_SHARE = 0.5
# Time spans, in seconds, that the frame rate turns into frame counts. Animal movements worth
# keeping last longer than SMOOTH_SECONDS (a 30 fps camera: 7 frames); a point missing for less
# than that is a detection dropout, not the part leaving the view; confidence is judged against
# the CONTEXT_SECONDS before it, long enough to hold a typical level through a brief occlusion.
SMOOTH_SECONDS = 0.25
CONTEXT_SECONDS = 2.0
POLY_ORDER = 2  # Savitzky–Golay: a quadratic keeps peaks and turns a moving average would blunt


@dataclass(frozen=True)
class SmoothingParams:
    window: int  # Savitzky–Golay window in frames (odd)
    max_gap: int  # longest run of missing frames filled by interpolation
    context: int  # frames before a point that its confidence is judged against

    @classmethod
    def for_fps(cls, fps: float) -> SmoothingParams:
        fps = fps if np.isfinite(fps) and fps > 0 else 30.0  # a file that reports no rate
        window = max(5, int(round(fps * SMOOTH_SECONDS)) | 1)
        return cls(window, window, max(window, int(round(fps * CONTEXT_SECONDS))))

    @property
    def ahead(self) -> int:
        """Later frames one smoothed value depends on: how far a stream must run ahead. The
        confidence context looks back only, so frames held for drawing stay few."""
        return self.window // 2 + self.max_gap + 1

    @property
    def behind(self) -> int:
        """Earlier frames one smoothed value depends on."""
        return self.ahead + self.context


def low_confidence(conf: np.ndarray, context: int) -> np.ndarray:
    """(T, K) True where a point's confidence falls far below that of the `context` frames
    before it (robust z, see LOW_CONFIDENCE_Z / LOW_CONFIDENCE_SHARE)."""
    conf = np.asarray(conf, np.float64)
    if len(conf) == 0:
        return np.zeros(conf.shape, bool)
    padded = np.pad(conf, ((context, 0), (0, 0)), constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, context + 1, axis=0)
    median = _nanmedian_last(windows)
    spread = MAD_TO_SD * _nanmedian_last(np.abs(windows - median[..., None]))
    cut = np.minimum(median - LOW_CONFIDENCE_Z * spread, LOW_CONFIDENCE_SHARE * median)
    return ~(conf >= cut)  # NaN confidence counts as missing


def _nanmedian_last(values: np.ndarray) -> np.ndarray:
    """Median over the last axis ignoring NaN (np.nanmedian is ~50× slower on small windows)."""
    ordered = np.sort(values, axis=-1)  # NaN sorts last
    n = np.sum(~np.isnan(values), axis=-1, keepdims=True)
    lo = np.take_along_axis(ordered, np.maximum((n - 1) // 2, 0), axis=-1)
    hi = np.take_along_axis(ordered, np.maximum(n // 2, 0), axis=-1)
    return np.where(n > 0, 0.5 * (lo + hi), np.nan)[..., 0]


def fill_gaps(xy: np.ndarray, missing: np.ndarray, max_gap: int) -> np.ndarray:
    """xy (T, K, 2) with missing points NaN, except runs of at most max_gap missing frames
    between two kept points, which are linearly interpolated."""
    xy = np.where(missing[..., None], np.nan, np.asarray(xy, np.float64))
    t = np.arange(len(xy))
    for k in range(xy.shape[1]):
        known = np.flatnonzero(~missing[:, k] & np.isfinite(xy[:, k]).all(-1))
        if len(known) < 2:
            continue
        gaps = np.diff(known) - 1
        for i in np.flatnonzero((gaps > 0) & (gaps <= max_gap)):
            a, b = known[i], known[i + 1]
            inside = t[a + 1 : b]
            w = ((inside - a) / (b - a))[:, None]
            xy[a + 1 : b, k] = (1 - w) * xy[a, k] + w * xy[b, k]
    return xy


def _sg_centre_weights(half: int) -> np.ndarray:
    """Savitzky–Golay weights giving the fitted polynomial's value at a window's centre."""
    j = np.arange(-half, half + 1, dtype=np.float64)
    return np.linalg.pinv(np.vander(j, POLY_ORDER + 1, increasing=True))[0]


def savgol(values: np.ndarray, window: int) -> np.ndarray:
    """Centred Savitzky–Golay along axis 0 of (T, ...) values with NaN holes. Near a hole or an
    end the window shrinks symmetrically (a one-sided fit would lag or overshoot), down to the
    raw value; NaN stays NaN."""
    values = np.asarray(values, np.float64)
    finite = np.isfinite(values)
    t = len(values)
    # Frames to the nearest non-finite value (or the end) on each side: the room to smooth in.
    idx = np.arange(t).reshape((t,) + (1,) * (values.ndim - 1))
    left = idx - np.maximum.accumulate(np.where(~finite, idx, -1), axis=0)
    right = np.flip(np.minimum.accumulate(np.flip(np.where(~finite, idx, t), 0), axis=0), 0)
    room = np.minimum(left, right - idx) - 1
    out = values.copy()
    zeroed = np.where(finite, values, 0.0)
    for half in range(POLY_ORDER // 2 + 1, window // 2 + 1):
        use = finite & (room >= half) & ((room < half + 1) | (half == window // 2))
        if not use.any():
            continue
        weights = _sg_centre_weights(half)
        padded = np.pad(zeroed, [(half, half)] + [(0, 0)] * (values.ndim - 1))
        smoothed = sum(w * padded[i : i + t] for i, w in enumerate(weights))
        out[use] = smoothed[use]
    return out


def smooth_track(xy: np.ndarray, conf: np.ndarray, params: SmoothingParams) -> np.ndarray:
    """(T, K, 2) smoothed positions: low-confidence points dropped, gaps up to params.max_gap
    interpolated, then a centred Savitzky–Golay filter (no lag: a movement is neither delayed
    nor anticipated). NaN where a point was missing for longer than max_gap."""
    missing = low_confidence(conf, params.context)
    return savgol(fill_gaps(xy, missing, params.max_gap), params.window)


class StreamingSmoother:
    """smooth_track in a streaming pipeline: push() frames in order and get back those whose
    smoothing is final (params.ahead frames behind the newest), push(final=True) for the rest.
    The same values as smooth_track on the whole track, holding only params.behind + ahead
    frames of points."""

    def __init__(self, params: SmoothingParams, first_frame: int = 0, skip: int = 0):
        """`skip`: the first frames pushed are context before a resumed run's first new frame;
        they shape the smoothing but are never returned."""
        self.params = params
        self.start = first_frame  # frame index of the buffer's first row
        self.emitted = first_frame + skip  # first frame not returned yet
        self.xy: np.ndarray | None = None
        self.conf: np.ndarray | None = None

    def push(self, xy: np.ndarray, conf: np.ndarray, final: bool = False):
        """Add frames; returns (first frame index, smoothed (n, K, 2)) of the frames now final
        (n may be 0)."""
        xy, conf = np.asarray(xy, np.float64), np.asarray(conf, np.float64)
        if self.xy is None:
            self.xy, self.conf = xy, conf
        else:
            self.xy, self.conf = np.concatenate([self.xy, xy]), np.concatenate([self.conf, conf])
        end = self.start + len(self.xy)
        ready_to = end if final else end - self.params.ahead
        first = self.emitted
        if ready_to <= first:
            return first, np.zeros((0,) + self.xy.shape[1:])
        smoothed = smooth_track(self.xy, self.conf, self.params)
        out = smoothed[first - self.start : ready_to - self.start]
        self.emitted = ready_to
        keep_from = max(self.start, ready_to - self.params.behind)
        self.xy = self.xy[keep_from - self.start :]
        self.conf = self.conf[keep_from - self.start :]
        self.start = keep_from
        return first, out


# --- frames the model likely got wrong ------------------------------------------------------


def robust_z(values: np.ndarray, axis=0) -> np.ndarray:
    """(value − median) / robust sd along `axis`, NaN-aware; 0 where the spread is 0."""
    median = np.nanmedian(values, axis=axis, keepdims=True)
    spread = MAD_TO_SD * np.nanmedian(np.abs(values - median), axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (values - median) / spread
    return np.where(spread > 0, z, 0.0)


def bone_pairs(keypoints: int, edges_as_indices: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The skeleton's edges, or every pair of keypoints when it has none (the distances within
    a body are as telling as its drawn bones)."""
    return list(edges_as_indices) or list(combinations(range(keypoints), 2))


@dataclass(frozen=True)
class BoneStats:
    """log bone lengths of the labeled data: their median and robust spread per pair."""

    pairs: list[tuple[int, int]]
    median: np.ndarray  # (P,)
    spread: np.ndarray  # (P,)

    @classmethod
    def from_labels(cls, xy: np.ndarray, pairs: list[tuple[int, int]]) -> BoneStats:
        logs = _log_lengths(np.asarray(xy, np.float64), pairs)
        median = np.nanmedian(logs, axis=0) if len(logs) else np.full(len(pairs), np.nan)
        spread = MAD_TO_SD * np.nanmedian(np.abs(logs - median), axis=0) if len(logs) else median
        return cls(pairs, median, spread)

    def z(self, xy: np.ndarray) -> np.ndarray:
        """(T, P) how many spreads each bone is from the labeled median (0 where unknown)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.abs(_log_lengths(xy, self.pairs) - self.median) / self.spread
        return np.nan_to_num(z, nan=0.0, posinf=0.0)


def _log_lengths(xy: np.ndarray, pairs) -> np.ndarray:
    if not pairs:
        return np.zeros((len(xy), 0))
    a, b = np.array(pairs).T
    with np.errstate(divide="ignore"):
        return np.log(np.linalg.norm(xy[:, a] - xy[:, b], axis=-1))


def outlier_scores(xy: np.ndarray, conf: np.ndarray, bones: BoneStats | None) -> np.ndarray:
    """(T,) how likely each frame's prediction is wrong: the worst robust z over its keypoints
    of three signs: confidence far below the keypoint's usual, a spike (a point far from the
    midpoint of its neighbours in time, which a real movement is not), and a bone length far
    from the labeled data's."""
    xy, conf = np.asarray(xy, np.float64), np.asarray(conf, np.float64)
    t = len(xy)
    if t == 0:
        return np.zeros(0)
    # A sign that cannot be read (a keypoint not found, no neighbour in time) counts as 0, so
    # it hides none of the others of its frame.
    low = np.nan_to_num(-robust_z(conf), nan=0.0)  # (T, K): high when confidence is unusually low
    spike = np.zeros_like(conf)
    if t >= 3:
        mid = 0.5 * (xy[:-2] + xy[2:])
        spike[1:-1] = np.nan_to_num(robust_z(np.linalg.norm(xy[1:-1] - mid, axis=-1)), nan=0.0)
    parts = [low.max(axis=1), spike.max(axis=1)]
    if bones is not None and bones.pairs:
        parts.append(bones.z(xy).max(axis=1))
    return np.max(parts, axis=0)


def track_arrays(frames: int, k: int, frame, track, xy, conf, score) -> tuple[np.ndarray, ...]:
    """Rows of several animals per frame (frame (R,), track id (R,), xy (R, K, 2), conf (R, K),
    score (R,)) as arrays with one slot per track id: xy (T, N, K, 2), conf (T, N, K), score
    (T, N), NaN where a track has no row; T = `frames`. Rows without a track (id < 0) are left
    out. Slot n is track n, so an animal keeps its slot from frame to frame."""
    frame, track = np.asarray(frame, np.int64), np.asarray(track, np.int64)
    keep = (track >= 0) & (frame >= 0) & (frame < frames)
    n = int(track[keep].max()) + 1 if keep.any() else 1
    out_xy = np.full((frames, n, k, 2), np.nan, np.float32)
    out_conf = np.full((frames, n, k), np.nan, np.float32)
    out_score = np.full((frames, n), np.nan, np.float32)
    if keep.any():
        f, t = frame[keep], track[keep]
        out_xy[f, t] = np.asarray(xy, np.float32)[keep]
        out_conf[f, t] = np.asarray(conf, np.float32)[keep]
        out_score[f, t] = np.asarray(score, np.float32)[keep]
    return out_xy, out_conf, out_score


def animal_outlier_scores(xy: np.ndarray, conf: np.ndarray, bones: BoneStats | None) -> np.ndarray:
    """(T,) outlier_scores for several animals (xy (T, N, K, 2), conf (T, N, K), a slot per
    track: track_arrays): each animal's series is scored on its own, never mixed with another
    animal's; while its track lasts, a frame it is missing from counts as confidence 0 (an
    animal the model lost there is a likely miss). A frame scores as its worst animal."""
    xy, conf = np.asarray(xy, np.float64), np.asarray(conf, np.float64)
    t = len(conf)
    worst = np.zeros(t)
    for n in range(conf.shape[1] if conf.ndim == 3 else 0):
        seen = np.isfinite(conf[:, n]).any(axis=1)
        if not seen.any():
            continue
        first, last = int(np.argmax(seen)), t - 1 - int(np.argmax(seen[::-1]))
        c = conf[:, n].copy()
        life = np.arange(t)
        c[(life >= first) & (life <= last) & ~seen] = 0.0
        scores = outlier_scores(xy[:, n], c, bones)
        scores[(life < first) | (life > last)] = 0.0  # not this animal's frames
        worst = np.maximum(worst, scores)
    return worst


def pick_spread(scores: np.ndarray, count: int, exclude=()) -> list[int]:
    """`count` frames of highest score, no two closer than a third of the video's length per
    pick (so they spread over the video), skipping `exclude`; sorted."""
    t = len(scores)
    allowed = np.ones(t, bool)
    allowed[[i for i in exclude if 0 <= i < t]] = False
    count = min(count, int(allowed.sum()))
    gap = t // (3 * count) if count else 0
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    chosen: list[int] = []
    free = allowed.copy()
    for i in order:
        if len(chosen) == count:
            break
        if free[i]:
            chosen.append(int(i))
            free[max(0, i - gap) : i + gap + 1] = False
    # Suppression can leave too few on a short video: top up by score from the rest.
    rest = [int(i) for i in order if allowed[i] and int(i) not in chosen]
    chosen += rest[: count - len(chosen)]
    return sorted(chosen)
