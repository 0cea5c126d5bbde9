"""Synthetic clips of several animals with known identities, and the count of identity swaps.

Shared by tests/core/test_instance_tracking.py and benchmarks/bench_tracking.py. Each animal
walks a circle of its own at its own speed and direction; the circles overlap, so the animals
cross each other's paths, some of them close enough to touch. Its pose is a rigid body of K
points (head to tail along its heading, two sides) in units of its body length. A detector is
imitated: noise on every point, points and whole animals missed, a false positive now and then,
and the instances of a frame listed in a random order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The body in its own frame (along the heading, to its left), in body lengths: head, neck,
# centre, left and right side, tail base, tail tip.
BODY = np.array(
    [[0.5, 0.0], [0.3, 0.0], [0.0, 0.0], [0.0, 0.18], [0.0, -0.18], [-0.3, 0.0], [-0.55, 0.0]]
)
K = len(BODY)


@dataclass(frozen=True)
class Clip:
    frames: list[list[tuple[np.ndarray, np.ndarray, float]]]  # instances (xy, conf, score)
    truth: list[list[int]]  # the animal of each instance; -1 for a false positive
    body_length: float


def make_clip(
    animals: int,
    frames: int,
    seed: int = 0,
    *,
    body_length: float = 40.0,
    spread: float = 1.0,
    speed: float = 0.15,
    noise: float = 0.03,
    miss: float = 0.05,
    point_miss: float = 0.1,
    false_positive: float = 0.05,
) -> Clip:
    """`spread`: how far apart the circles' centres are, in circle radii (≥ 2: they never
    meet; ≤ 1: they cross). `speed` in body lengths per frame; `noise` (the sd of a point's
    error) in body lengths; `miss`, `point_miss`, `false_positive`: chances per frame."""
    rng = np.random.default_rng(seed)
    radius = 4.0 * body_length
    # Centres on a ring of `spread` radii around the middle of the arena.
    angles = 2 * np.pi * np.arange(animals) / animals
    ring = spread * radius * (0.5 if animals > 1 else 0.0) / max(np.sin(np.pi / animals), 0.5)
    centres = np.stack([np.cos(angles), np.sin(angles)], 1) * ring + 6 * radius
    omega = speed * body_length / radius * rng.uniform(0.7, 1.3, animals)
    omega *= np.where(np.arange(animals) % 2, -1.0, 1.0)  # neighbours turn opposite ways
    phase = rng.uniform(0, 2 * np.pi, animals)
    out, truth = [], []
    for t in range(frames):
        instances, who = [], []
        for a in range(animals):
            if rng.random() < miss:
                continue
            theta = phase[a] + omega[a] * t
            centre = centres[a] + radius * np.array([np.cos(theta), np.sin(theta)])
            heading = theta + np.sign(omega[a]) * np.pi / 2  # along the circle
            rot = np.array([[np.cos(heading), -np.sin(heading)],
                            [np.sin(heading), np.cos(heading)]])  # fmt: skip
            xy = centre + body_length * BODY @ rot.T
            xy = xy + rng.normal(0, noise * body_length, xy.shape)
            conf = rng.uniform(0.6, 1.0, K)
            lost = rng.random(K) < point_miss
            xy[lost] = np.nan
            conf[lost] = 0.0
            instances.append((xy, conf, float(rng.uniform(0.8, 1.0))))
            who.append(a)
        if rng.random() < false_positive:  # a few points somewhere, weakly scored
            xy = np.full((K, 2), np.nan)
            some = rng.choice(K, 3, replace=False)
            xy[some] = rng.uniform(4, 8, 2) * radius + rng.normal(0, body_length / 3, (3, 2))
            instances.append((xy, np.where(np.isfinite(xy[:, 0]), 0.4, 0.0), 0.3))
            who.append(-1)
        order = rng.permutation(len(instances))
        out.append([instances[i] for i in order])
        truth.append([who[i] for i in order])
    return Clip(out, truth, body_length)


def count_swaps(truth: list[list[int]], ids: list[list[int]]) -> int:
    """Frames where the track id given to a true animal differs from the one it had the last
    frame it was seen (a lost animal coming back under a new id counts too)."""
    last: dict[int, int] = {}
    swaps = 0
    for who, got in zip(truth, ids):
        for animal, track in zip(who, got):
            if animal < 0:
                continue
            if animal in last and last[animal] != track:
                swaps += 1
            last[animal] = track
    return swaps


def nearest_centroid_ids(frames, max_distance: float) -> list[list[int]]:
    """The naive linker to compare with: each instance takes the id of the nearest centroid of
    the previous frame's instances (greedy, closest pairs first), else a new id."""
    prev: list[tuple[np.ndarray, int]] = []
    next_id, out = 0, []
    for instances in frames:
        cents = [np.nanmean(np.asarray(xy), axis=0) for xy, _, _ in instances]
        pairs = sorted(
            (float(np.linalg.norm(c - p)), i, j)
            for i, c in enumerate(cents)
            for j, (p, _) in enumerate(prev)
        )
        ids = [-1] * len(cents)
        used = set()
        for d, i, j in pairs:
            if d <= max_distance and ids[i] < 0 and j not in used:
                ids[i] = prev[j][1]
                used.add(j)
        for i in range(len(ids)):
            if ids[i] < 0:
                ids[i], next_id = next_id, next_id + 1
        prev = list(zip(cents, ids))
        out.append(ids)
    return out


def crossing_clip(
    angle_deg: float,
    seed: int = 0,
    *,
    frames: int = 60,
    hidden: int = 4,
    body_length: float = 40.0,
    speed: float = 0.15,
    noise: float = 0.03,
) -> Clip:
    """Two animals on straight lines crossing in an X at `angle_deg`, both at the crossing
    point in the middle frame, and neither detected for `hidden` frames around it (one hides
    the other, or both go under a shelter). Which one comes out where only their motion says:
    their poses are alike and their last positions equally near."""
    rng = np.random.default_rng(seed)
    half = np.deg2rad(angle_deg) / 2
    out, truth = [], []
    for t in range(frames):
        if abs(t - frames // 2 + 0.5) < hidden / 2:
            out.append([])
            truth.append([])
            continue
        instances = []
        for heading in (half, -half):
            direction = np.array([np.cos(heading), np.sin(heading)])
            centre = 12 * body_length + direction * (t - frames / 2) * speed * body_length
            rot = np.array([[np.cos(heading), -np.sin(heading)],
                            [np.sin(heading), np.cos(heading)]])  # fmt: skip
            xy = centre + body_length * BODY @ rot.T
            xy = xy + rng.normal(0, noise * body_length, xy.shape)
            instances.append((xy, np.ones(K), 0.9))
        order = rng.permutation(2)
        out.append([instances[i] for i in order])
        truth.append([int(i) for i in order])
    return Clip(out, truth, body_length)
