"""Linking instances into tracks: an exact assignment, stable ids through crossings, misses and
false positives on synthetic clips with known identities, and the motion model's worth."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from synthetic_animals import K, count_swaps, crossing_clip, make_clip, nearest_centroid_ids

from kpstudio.core.instance_tracking import (
    UNASSIGNED,
    InstanceTracker,
    TrackerParams,
    link_tracks,
    solve_assignment,
)


def brute_force(cost):
    if cost.shape[0] > cost.shape[1]:
        cost = cost.T
    n, m = cost.shape
    return min(sum(cost[i, p[i]] for i in range(n)) for p in itertools.permutations(range(m), n))


def test_the_assignment_is_the_cheapest_one():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, m = map(int, rng.integers(1, 6, 2))
        cost = rng.random((n, m))
        if rng.random() < 0.3:
            cost = np.round(cost, 1)  # ties
        pairs = solve_assignment(cost)
        assert len(pairs) == min(n, m)
        assert len({r for r, _ in pairs}) == len({c for _, c in pairs}) == len(pairs)
        assert sum(cost[r, c] for r, c in pairs) == pytest.approx(brute_force(cost))
    assert solve_assignment(np.zeros((0, 3))) == []


def test_the_easy_clip_has_no_swap_and_one_id_per_animal():
    clip = make_clip(2, 600, seed=1, spread=2.5, noise=0.01, miss=0.02, false_positive=0.0)
    ids = link_tracks(clip.frames, K, fps=30)
    assert count_swaps(clip.truth, ids) == 0
    assert {i for frame in ids for i in frame} == {0, 1}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crossing_animals_keep_their_ids_and_the_motion_model_is_why(seed):
    # Three animals whose paths cross, with noise, missed points and animals, false positives
    # and shuffled order; measured over seeds 0-2: 0, 1, 0 swaps with the motion model; 41,
    # 207, 117 without it (at 0.15 body lengths a frame the last pose is often too far from the
    # new one: the track breaks); 131, 155, 162 for the nearest-centroid linker.
    clip = make_clip(3, 1000, seed=seed, spread=0.6)
    tracked = count_swaps(clip.truth, link_tracks(clip.frames, K, fps=30))
    still = TrackerParams.for_fps(30, motion=False)
    no_motion = count_swaps(clip.truth, link_tracks(clip.frames, K, params=still))
    naive = count_swaps(clip.truth, nearest_centroid_ids(clip.frames, clip.body_length))
    assert tracked <= 3
    assert no_motion >= 10 * max(tracked, 1)
    assert naive >= 10 * max(tracked, 1)


@pytest.mark.parametrize("angle", [15, 30])
def test_animals_hidden_where_they_cross_come_out_with_their_ids(angle):
    # Measured over seeds 0-9 with the number of animals known (so no track can break): the
    # motion model swaps in none of the clips, the tracker without it and the nearest-centroid
    # linker in all 10 (the last poses before the gap are as near the wrong animal after it).
    still = TrackerParams.for_fps(30, motion=False)
    with_motion = without = naive = 0
    for seed in range(10):
        clip = crossing_clip(angle, seed)
        with_motion += count_swaps(clip.truth, link_tracks(clip.frames, K, max_tracks=2))
        without += count_swaps(clip.truth, link_tracks(clip.frames, K, 2, still)) > 0
        naive += count_swaps(clip.truth, nearest_centroid_ids(clip.frames, clip.body_length)) > 0
    assert with_motion == 0
    assert without >= 8 and naive >= 8


@pytest.mark.parametrize("animals", [2, 5])
def test_a_known_number_of_animals_caps_the_ids(animals):
    clip = make_clip(animals, 800, seed=3, spread=0.6)
    ids = link_tracks(clip.frames, K, max_tracks=animals, fps=30)
    used = {i for frame in ids for i in frame}
    assert used <= set(range(animals)) | {UNASSIGNED}
    assert count_swaps(clip.truth, ids) <= 2
    # The false positives are the ones left without an id, never a real animal.
    for who, got in zip(clip.truth, ids):
        for animal, track in zip(who, got):
            if track == UNASSIGNED:
                assert animal == -1


def test_ids_do_not_depend_on_the_order_of_instances():
    clip = make_clip(3, 300, seed=4, spread=0.6)
    rng = np.random.default_rng(5)
    shuffled, orders = [], []
    for frame in clip.frames:
        order = rng.permutation(len(frame))
        shuffled.append([frame[i] for i in order])
        orders.append(order)
    for max_tracks in (None, 3):
        ids = link_tracks(clip.frames, K, max_tracks=max_tracks, fps=30)
        again = link_tracks(shuffled, K, max_tracks=max_tracks, fps=30)
        for got, order, want in zip(again, orders, ids):
            assert got == [want[i] for i in order]


def test_a_lost_animal_is_found_again_within_a_second_and_not_after():
    clip = make_clip(1, 200, seed=6, miss=0.0, false_positive=0.0)
    frames = [f if not 50 <= t < 70 else [] for t, f in enumerate(clip.frames)]  # 20 frames
    ids = link_tracks(frames, K, fps=30)
    assert {i for f in ids for i in f} == {0}
    frames = [f if not 50 <= t < 100 else [] for t, f in enumerate(clip.frames)]  # 50 frames
    ids = link_tracks(frames, K, fps=30)
    assert ids[49] == [0] and ids[100] == [1]  # gone longer than a second: a new animal
    ids = link_tracks(frames, K, max_tracks=1, fps=30)
    assert ids[100] == [0]  # one animal known: it is the same one


def test_seeding_from_earlier_rows_continues_the_ids():
    clip = make_clip(2, 200, seed=7, spread=0.6, false_positive=0.0)
    whole = InstanceTracker(K, fps=30)
    ids = [whole.update(f) for f in clip.frames]
    resumed = InstanceTracker(K, fps=30)
    for t in range(70, 100):  # the tail of a partial file: its rows with their ids
        for (xy, _, _), track in zip(clip.frames[t], ids[t]):
            resumed.seed(t, track, np.round(xy, 3))
    later = [resumed.update(f, frame=t) for t, f in enumerate(clip.frames) if t >= 100]
    assert later == ids[100:]


def test_an_instance_of_another_skeleton_is_refused():
    tracker = InstanceTracker(3)
    with pytest.raises(ValueError, match="4 keypoints; the tracker follows 3"):
        tracker.update([(np.zeros((4, 2)), np.ones(4), 1.0)])


def test_a_resumed_tracker_gives_a_known_animal_missing_from_the_rows_read_back_its_id():
    clip = make_clip(2, 60, seed=8, spread=2.5, miss=0.0, point_miss=0.0, false_positive=0.0)
    first = [(xy, c, s) for (xy, c, s), who in zip(clip.frames[0], clip.truth[0]) if who == 0]
    second = [(xy, c, s) for (xy, c, s), who in zip(clip.frames[0], clip.truth[0]) if who == 1]
    tracker = InstanceTracker(K, max_tracks=2, fps=30)
    tracker.seed(0, 0, first[0][0], 0.9)  # only animal 0's row was in the part read back
    tracker.next_id = 2  # the sidecar: ids 0 and 1 were used
    assert tracker.update(first + second, frame=1) == [0, 1]
