"""Which image to label next: the unlabeled images that should teach the model most.

The rule (plain arrays in, indices out; no Qt, no TensorFlow):

- **Before any model exists: diversity alone.** Greedy k-center (farthest-point) selection
  over the image features (kpstudio.core.image_features): each pick is the candidate farthest
  from every labeled image and every earlier pick, so the first labels cover the scenes,
  lightings and poses of the project instead of twenty near-identical video frames. With no
  label yet the first pick is the most typical image (closest to the mean feature).
- **With an active model: uncertainty weighted by diversity.** The model scores each
  candidate in [0, 1] (kpstudio.ml.uncertainty: low confidence, and disagreement between the
  prediction on the image and on its mirror image mapped back). Each pick is the candidate
  with the highest uncertainty × distance to the nearest labeled or already picked image.
  Uncertainty alone would pick runs of consecutive frames that fool the model the same way
  (a top-uncertain pool fills with one such run); the product sinks a near-duplicate of a
  pick to zero, while among images equally far from the labels the model's doubt decides.
- Scoring many thousands of images with a model costs minutes on a CPU, so past
  `MAX_SCORED` candidates the model only scores a k-center subset of that size: a spread-out
  sample of the unlabeled images.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_SCORED = 2000
LABELED_STATUSES = ("partial", "done")
CANDIDATE_STATUSES = ("unlabeled", "predicted")


def k_center(features: np.ndarray, labeled: np.ndarray, count: int,
             candidates: np.ndarray | None = None) -> list[int]:  # fmt: skip
    """Greedy farthest-point picks: indices of `count` candidates (default: every unlabeled
    row with finite features), each the farthest from the labeled rows and earlier picks."""
    feats = np.asarray(features, dtype=np.float64)
    finite = np.isfinite(feats).all(axis=1)
    labeled = np.asarray(labeled, dtype=bool) & finite
    cand = ~labeled & finite if candidates is None else np.asarray(candidates, bool) & finite
    idx = np.flatnonzero(cand)
    if count <= 0 or not len(idx):
        return []
    pool = feats[idx]
    picks: list[int] = []
    if labeled.any():
        nearest = _min_distances(pool, feats[labeled])
    else:  # nothing to be far from yet: start with the most typical image
        first = int(np.argmin(np.linalg.norm(pool - pool.mean(axis=0), axis=1)))
        nearest = np.linalg.norm(pool - pool[first], axis=1)
        nearest[first] = -1.0
        picks.append(first)
    return [int(idx[i]) for i in _farthest(pool, nearest, count - len(picks), picks)]


def _farthest(pool: np.ndarray, nearest: np.ndarray, count: int, picks: list[int]) -> list[int]:
    nearest = nearest.copy()
    for _ in range(min(count, len(pool) - len(picks))):
        best = int(np.argmax(nearest))
        if nearest[best] < 0:
            break
        picks.append(best)
        nearest = np.minimum(nearest, np.linalg.norm(pool - pool[best], axis=1))
        nearest[best] = -1.0  # never twice
    return picks


def _min_distances(a: np.ndarray, b: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """For each row of `a`, the distance to the nearest row of `b` (in chunks: bounded memory
    for 100,000 × 100,000 images)."""
    out = np.full(len(a), np.inf)
    b_sq = (b**2).sum(axis=1)
    for start in range(0, len(b), chunk):
        part, part_sq = b[start : start + chunk], b_sq[start : start + chunk]
        d2 = (a**2).sum(axis=1)[:, None] - 2 * a @ part.T + part_sq[None, :]
        out = np.minimum(out, np.sqrt(np.maximum(d2, 0.0)).min(axis=1))
    return out


def combine(
    features: np.ndarray, labeled: np.ndarray, count: int, uncertainty: np.ndarray,
    candidates: np.ndarray | None = None,
) -> list[int]:  # fmt: skip
    """The model's rule: greedy picks of the highest uncertainty × distance to the nearest
    labeled or already picked image (rows whose uncertainty is NaN, e.g. unscored, are left
    out). With nothing labeled the first pick is the most uncertain image."""
    feats = np.asarray(features, dtype=np.float64)
    unc = np.asarray(uncertainty, dtype=np.float64)
    labeled = np.asarray(labeled, bool) & np.isfinite(feats).all(axis=1)
    cand = ~labeled if candidates is None else np.asarray(candidates, bool)
    idx = np.flatnonzero(cand & np.isfinite(feats).all(axis=1) & np.isfinite(unc))
    if count <= 0 or not len(idx):
        return []
    pool, weight = feats[idx], np.clip(unc[idx], 0.0, None)
    nearest = _min_distances(pool, feats[labeled]) if labeled.any() else np.full(len(idx), np.inf)
    picks: list[int] = []
    for _ in range(min(count, len(idx))):
        score = weight.copy() if np.isinf(nearest).all() else weight * nearest
        score[picks] = -1.0
        best = int(np.argmax(score))
        picks.append(best)
        nearest = np.minimum(nearest, np.linalg.norm(pool - pool[best], axis=1))
    return [int(idx[i]) for i in picks]


@dataclass(frozen=True)
class Suggestion:
    image_id: int
    path: str  # as stored (relative to the project)
    uncertainty: float | None  # None: chosen by diversity alone
    distance: float  # to the nearest labeled image in feature space (inf: none labeled)

    def to_dict(self) -> dict:
        return {"image_id": self.image_id, "path": self.path, "uncertainty": self.uncertainty,
                "distance": None if math.isinf(self.distance) else self.distance}  # fmt: skip


@dataclass(frozen=True)
class Inputs:
    """What choosing needs from the store, read once (in the thread owning the connection)."""

    project_folder: Path
    ids: list[int]
    stored_paths: list[str]
    paths: list[Path]
    labeled: np.ndarray  # bool per image
    candidates: np.ndarray  # bool per image: unlabeled or only predicted

    @classmethod
    def read(cls, project) -> Inputs:
        records = [r for r in project.images() if r.status != "unreadable"]
        # folder / path, not project.image_path: resolving 100,000 paths costs a second of
        # file-system calls, and the studio reads these in the UI thread.
        return cls(project.folder, [r.id for r in records], [r.path for r in records],
                   [project.folder / r.path for r in records],
                   np.array([r.status in LABELED_STATUSES for r in records], dtype=bool),
                   np.array([r.status in CANDIDATE_STATUSES for r in records],
                            dtype=bool))  # fmt: skip


Scorer = Callable[[list[Path]], np.ndarray]  # paths → uncertainty in [0, 1], NaN unreadable


def choose(inputs: Inputs, count: int, features: np.ndarray,
           scorer: Scorer | None = None) -> list[Suggestion]:  # fmt: skip
    """The `count` suggested images (see the module doc), best first."""
    uncertainty = None
    if scorer is not None and inputs.candidates.any():
        scored = inputs.candidates.copy()
        if scored.sum() > MAX_SCORED:
            scored[:] = False
            scored[k_center(features, inputs.labeled, MAX_SCORED, inputs.candidates)] = True
        which = np.flatnonzero(scored)
        uncertainty = np.full(len(inputs.ids), np.nan)
        uncertainty[which] = scorer([inputs.paths[i] for i in which])
        picks = combine(features, inputs.labeled, count, uncertainty, inputs.candidates)
    else:
        picks = k_center(features, inputs.labeled, count, inputs.candidates)
    feats = np.asarray(features, dtype=np.float64)
    ref = feats[inputs.labeled & np.isfinite(feats).all(axis=1)]
    dist = (_min_distances(feats[picks], ref) if len(ref) and picks
            else np.full(len(picks), np.inf))  # fmt: skip
    return [Suggestion(inputs.ids[i], inputs.stored_paths[i],
                       None if uncertainty is None else float(uncertainty[i]), float(d))
            for i, d in zip(picks, dist)]  # fmt: skip


def ordered_ids(suggestions: Sequence[Suggestion]) -> list[int]:
    return [s.image_id for s in suggestions]
