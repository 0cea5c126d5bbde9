"""Several animals in a video: the instances of each frame linked into tracks with stable ids.

Online, one frame at a time (a video of any length in flat memory): each track predicts where
its animal's keypoints are in the new frame (a constant-velocity motion model), every instance
is compared with every prediction by OKS (object keypoint similarity, COCO's pose distance in
units of the object's size), and one exact assignment (the Hungarian method) links them, an
instance too far from every prediction starting a new track. A track missed for a while is kept
and can be found again; with the number of animals known, ids never outnumber them.

Everything here is numpy only and in units of the animals' own size or of time, never pixels:
the same settings work for flies at 1024 px and mice at 640 px. Smoothing (core/tracks.py) runs
per track id after linking, never across ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# OKS falloff per keypoint, in units of the object's scale (sqrt of its box area): a point this
# far from its prediction scores exp(-1/2) = 0.61. COCO's body keypoints use 2σ = 0.12-0.21;
# 0.15 sits in the middle, so the cost reads as pose similarity, not as a pixel radius.
KAPPA = 0.15
# Below this OKS an instance is not the track's animal (cost 1 - OKS above the gate): at 0.1
# its points are on average ~2.1 κ, a third of the animal's size, from where they should be.
MIN_OKS = 0.1
# A lost track is kept this long (then a new animal gets a new id): an animal hidden for a
# second is usually the same one coming back; longer gaps need a known number of animals.
KEEP_SECONDS = 1.0
# How much of a new velocity measurement the track takes (an alpha-beta filter's beta): half
# keeps up with a turn within two frames while halving the detection noise in the velocity.
VELOCITY_GAIN = 0.5
# With every animal's id in use, an unmatched instance takes a lost animal's id only if its
# object score is at least this share of the matched instances' typical score: a real animal
# coming back scores like the others, a spurious extra detection well below them.
WEAK_SCORE_SHARE = 0.5
SCORE_GAIN = 0.05  # the typical score follows the last ~20 matches
UNASSIGNED = -1  # the track id of an instance no track takes (more instances than animals)


@dataclass(frozen=True)
class TrackerParams:
    max_missed: int  # frames a track may go unseen and still be found again
    kappa: float = KAPPA
    min_oks: float = MIN_OKS
    motion: bool = True  # False: a track is predicted where it was last seen (for comparison)

    @classmethod
    def for_fps(cls, fps: float, **kw) -> TrackerParams:
        fps = fps if np.isfinite(fps) and fps > 0 else 30.0  # a file that reports no rate
        return cls(max(1, int(round(fps * KEEP_SECONDS))), **kw)


def solve_assignment(cost: np.ndarray) -> list[tuple[int, int]]:
    """Exact minimum-cost assignment of a (n, m) cost matrix: (row, column) pairs, min(n, m)
    of them, sorted by row. The Hungarian method with potentials, O(n² m): a few animals and
    their detections are a few-by-few matrix, so no library is needed for it."""
    cost = np.asarray(cost, np.float64)
    transposed = cost.shape[0] > cost.shape[1]
    if transposed:
        cost = cost.T
    n, m = cost.shape
    if n == 0:
        return []
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    owner = np.zeros(m + 1, np.int64)  # owner[j]: row (1-based) holding column j; 0 = free
    way = np.zeros(m + 1, np.int64)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        best = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while True:  # grow an alternating tree from row i until it reaches a free column
            used[j0] = True
            i0 = owner[j0]
            reduced = cost[i0 - 1] - u[i0] - v[1:]
            free = ~used[1:]
            better = free & (reduced < best[1:])
            best[1:][better] = reduced[better]
            way[1:][better] = j0
            candidates = np.where(free, best[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[owner[used]] += delta
            v[used] -= delta
            best[1:][free] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:  # flip the augmenting path
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    pairs = [(int(owner[j]) - 1, j - 1) for j in range(1, m + 1) if owner[j]]
    if transposed:
        pairs = [(c, r) for r, c in pairs]
    return sorted(pairs)


def box_area(xy: np.ndarray) -> float:
    """Area of the box around a pose's finite points (0 with fewer than two)."""
    pts = xy[np.isfinite(xy).all(axis=1)]
    if len(pts) < 2:
        return 0.0
    w, h = pts.max(axis=0) - pts.min(axis=0)
    return float(w * h)


@dataclass
class _Track:
    id: int
    xy: np.ndarray  # (K, 2) where each keypoint is believed to be at frame `seen`
    velocity: np.ndarray | None  # (2,) px per frame of the whole animal; None until seen twice
    seen: int  # the last frame it was matched in
    area: float  # the animal's typical box area (a running mean over its matches)

    def predict(self, frame: int, motion: bool) -> np.ndarray:
        if not motion or self.velocity is None:
            return self.xy
        return self.xy + self.velocity * (frame - self.seen)

    def update(self, frame: int, xy: np.ndarray, area: float, motion: bool) -> None:
        dt = max(1, frame - self.seen)
        both = np.isfinite(xy).all(axis=1) & np.isfinite(self.xy).all(axis=1)
        if both.any():
            # The animal's displacement: the median over its keypoints, so one misplaced point
            # (a swapped left/right leg) does not drag the velocity.
            step = np.median(xy[both] - self.xy[both], axis=0) / dt
            if self.velocity is None:
                self.velocity = step
            else:
                self.velocity = self.velocity + VELOCITY_GAIN * (step - self.velocity)
        predicted = self.predict(frame, motion)
        found = np.isfinite(xy).all(axis=1)
        # A keypoint not seen now is carried along with the body rather than left behind.
        self.xy = np.where(found[:, None], xy, predicted)
        self.seen = frame
        if area > 0:
            self.area = area if self.area <= 0 else self.area + 0.2 * (area - self.area)


def _instance(item) -> tuple[np.ndarray, np.ndarray, float]:
    """(xy, confidence, score) from a tuple or a Prediction-like object."""
    if hasattr(item, "xy"):
        return (np.asarray(item.xy, np.float64), np.asarray(item.confidence, np.float64),
                float(getattr(item, "score", 1.0)))  # fmt: skip
    xy, conf, score = item
    return np.asarray(xy, np.float64), np.asarray(conf, np.float64), float(score)


class InstanceTracker:
    """Online linker: update(instances) once per frame, in frame order, returns a track id per
    instance (UNASSIGNED when more instances than `max_tracks` animals are found)."""

    def __init__(
        self,
        num_keypoints: int,
        max_tracks: int | None = None,
        params: TrackerParams | None = None,
        fps: float = 30.0,
    ):
        self.k = num_keypoints
        self.max_tracks = max_tracks if max_tracks and max_tracks > 0 else None
        self.params = params or TrackerParams.for_fps(fps)
        self.tracks: list[_Track] = []
        self.next_id = 0
        self.frame = -1  # the last frame updated
        self.typical_score = 0.0  # a running mean of the object scores of matched instances

    def update(self, instances: Sequence, frame: int | None = None) -> list[int]:
        """Track ids for one frame's instances (in their order). `frame`: its index, when
        frames were skipped (default: the next)."""
        frame = self.frame + 1 if frame is None else int(frame)
        self.frame = frame
        items = [_instance(i) for i in instances]
        for xy, conf, _ in items:
            if xy.shape != (self.k, 2) or conf.shape != (self.k,):
                raise ValueError(
                    f"an instance has {xy.shape[0]} keypoints; the tracker follows {self.k}"
                )
        self._forget(frame)
        ids = [UNASSIGNED] * len(items)
        # A canonical order (most certain first, then by position), so the answer does not
        # depend on the order the model listed the instances in.
        usable = [i for i, (xy, _, _) in enumerate(items) if np.isfinite(xy).all(axis=1).any()]
        order = sorted(usable, key=lambda i: (-items[i][2], *_centroid(items[i][0])))
        areas = {i: box_area(items[i][0]) for i in order}
        cost = self._costs([items[i] for i in order], [areas[i] for i in order], frame)
        gate = 1.0 - self.params.min_oks
        rows = list(range(len(order)))
        ages = np.array([frame - t.seen for t in self.tracks])
        # A matching cascade (as DeepSORT's): the tracks seen most recently choose first. A
        # long-lost track's wide falloff makes every instance near it look similar to it; in
        # one joint assignment it would outbid the instance's own, just-seen track.
        for age in np.unique(ages):
            cols = np.flatnonzero(ages == age)
            if not rows:
                break
            sub = cost[np.ix_(rows, cols)]
            n, m = sub.shape
            # Each instance also gets its own "no track" column costing the gate: it takes a
            # track only where that is cheaper, i.e. only inside the gate.
            padded = np.full((n, m + n), 1e6)  # 1e6: never chosen (the solver needs finite)
            padded[:, :m] = np.where(sub < gate, sub, 1e6)
            padded[np.arange(n), m + np.arange(n)] = gate
            matched = set()
            for r, c in solve_assignment(padded):
                if c < m:
                    i = order[rows[r]]
                    ids[i] = self._match(self.tracks[cols[c]], items[i], areas[i])
                    matched.add(rows[r])
            rows = [r for r in rows if r not in matched]
        left = rows
        taken = {ids[i] for i in order if ids[i] != UNASSIGNED}
        for r in left:  # in canonical order: the most certain instances get ids first
            i = order[r]
            ids[i] = self._place(items[i], areas[i], frame, taken)
            taken.add(ids[i])
        return ids

    def _forget(self, frame: int) -> None:
        # With a known number of animals an id is an animal: keep it however long it is lost.
        if self.max_tracks is None:
            self.tracks = [t for t in self.tracks if frame - t.seen <= self.params.max_missed]

    def _costs(self, items, areas, frame) -> np.ndarray:
        """(instances, tracks) 1 - OKS, all pairs at once."""
        if not items or not self.tracks:
            return np.ones((len(items), len(self.tracks)))
        xy = np.stack([i[0] for i in items])[:, None]  # (n, 1, K, 2)
        conf = np.stack([i[1] for i in items])[:, None]  # (n, 1, K)
        predicted = np.stack([t.predict(frame, self.params.motion) for t in self.tracks])[None]
        # The prediction's error grows with the frames since the track was seen: an error in
        # the velocity (the animal turned, sped up) moves the point in proportion to the time,
        # so the falloff widens linearly and a lost animal can be found further away.
        lost_for = np.array([max(1, frame - t.seen) for t in self.tracks], np.float64)
        kappa2 = (self.params.kappa * lost_for[None, :, None]) ** 2
        # A partly found animal has a small box; of the two estimates of its size, the larger
        # is the right one whenever the match is right.
        area = np.maximum(np.array(areas)[:, None], np.array([t.area for t in self.tracks]))
        both = np.isfinite(xy).all(-1) & np.isfinite(predicted).all(-1)  # (n, m, K)
        weight = np.where(both, np.nan_to_num(conf, nan=0.0), 0.0)
        d2 = np.sum(np.where(both[..., None], xy - predicted, 0.0) ** 2, axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            similarity = np.exp(-d2 / (2.0 * area[..., None] * kappa2))
            score = np.sum(weight * similarity, -1) / weight.sum(-1)
        ok = (weight.sum(-1) > 0) & (area > 0)
        return 1.0 - np.where(ok, score, 0.0)

    def _match(self, track: _Track, item, area: float) -> int:
        track.update(self.frame, item[0], area, self.params.motion)
        score = item[2]
        self.typical_score += SCORE_GAIN * (score - self.typical_score)
        return track.id

    def _place(self, item, area: float, frame: int, taken: set[int]) -> int:
        """A new track for an unmatched instance, or with every animal's id in use, the lost
        track it is closest to (in units of that animal's size)."""
        xy, conf, _ = item
        if self.max_tracks is None:
            new_id = self.next_id
        else:
            # The lowest id no track holds: after a resume, an animal whose rows lay before
            # the part read back gets its own id again rather than none.
            held = {t.id for t in self.tracks}
            new_id = next((i for i in range(self.max_tracks) if i not in held), None)
        if new_id is not None:
            self.tracks.append(_Track(new_id, xy.copy(), None, frame, area))
            self.next_id = max(self.next_id, new_id + 1)
            return new_id
        lost = [t for t in self.tracks if t.id not in taken]
        if not lost:
            return UNASSIGNED
        centre = np.array(_centroid(xy))

        def distance(t: _Track) -> float:
            gap = np.linalg.norm(centre - np.array(_centroid(t.predict(frame, self.params.motion))))
            return gap / np.sqrt(max(t.area, area, 1e-12))

        if item[2] < WEAK_SCORE_SHARE * self.typical_score:
            return UNASSIGNED  # a weak extra detection would take, and corrupt, an animal's id
        track = min(lost, key=lambda t: (distance(t), t.id))
        # Wherever it was, its old motion says nothing about this jump: start it afresh here.
        track.xy, track.velocity, track.seen = xy.copy(), None, frame
        return track.id

    def seed(self, frame: int, track_id: int, xy: np.ndarray, score: float = np.nan) -> None:
        """Replay one row of an earlier run (frames in order, before any update of later
        frames): resuming a partial file continues its ids and motion."""
        xy = np.asarray(xy, np.float64)
        self.frame = max(self.frame, int(frame))
        self.next_id = max(self.next_id, int(track_id) + 1)
        if np.isfinite(score):
            self.typical_score += SCORE_GAIN * (score - self.typical_score)
        for track in self.tracks:
            if track.id == track_id:
                track.update(int(frame), xy, box_area(xy), self.params.motion)
                return
        self.tracks.append(_Track(int(track_id), xy.copy(), None, int(frame), box_area(xy)))


def _centroid(xy: np.ndarray) -> tuple[float, float]:
    pts = xy[np.isfinite(xy).all(axis=1)]
    if not len(pts):
        return (np.inf, np.inf)
    c = pts.mean(axis=0)
    return (float(c[0]), float(c[1]))


def link_tracks(
    frames: Iterable[Sequence],
    num_keypoints: int,
    max_tracks: int | None = None,
    params: TrackerParams | None = None,
    fps: float = 30.0,
) -> list[list[int]]:
    """Track ids for every frame's instances (a list per frame, in the instances' order)."""
    tracker = InstanceTracker(num_keypoints, max_tracks, params, fps)
    return [tracker.update(instances) for instances in frames]
