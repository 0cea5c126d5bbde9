"""Keypoint tracks: smoothing removes jitter without lag, streams exactly, and frames the model
likely got wrong are found and spread over the video."""

from __future__ import annotations

import numpy as np
import pytest

from kpstudio.core.tracks import (
    BoneStats,
    SmoothingParams,
    StreamingSmoother,
    animal_outlier_scores,
    bone_pairs,
    fill_gaps,
    low_confidence,
    outlier_scores,
    pick_spread,
    savgol,
    smooth_track,
    track_arrays,
)

FPS = 30.0


def jitter(track: np.ndarray) -> float:
    """RMS frame-to-frame movement."""
    return float(np.sqrt(np.nanmean(np.sum(np.diff(track, axis=0) ** 2, axis=-1))))


def noisy_track(t=300, k=2, sd=1.0, seed=0):
    rng = np.random.default_rng(seed)
    xy = np.full((t, k, 2), 100.0) + rng.normal(0, sd, (t, k, 2))
    conf = np.clip(0.9 + rng.normal(0, 0.02, (t, k)), 0, 1)
    return xy, conf


def test_params_follow_the_frame_rate():
    slow, fast = SmoothingParams.for_fps(30), SmoothingParams.for_fps(120)
    assert slow.window % 2 == 1 and fast.window % 2 == 1
    assert fast.window > 3 * slow.window // 2  # the same time span in more frames
    assert fast.context == 4 * slow.context
    assert SmoothingParams.for_fps(float("nan")) == slow  # no rate in the file: assume 30


def test_smoothing_reduces_jitter_on_a_still_point():
    xy, conf = noisy_track()
    smoothed = smooth_track(xy, conf, SmoothingParams.for_fps(FPS))
    assert jitter(smoothed) < 0.4 * jitter(xy)
    # and stays centred on the true position
    np.testing.assert_allclose(np.nanmean(smoothed, axis=0), 100.0, atol=0.2)


def test_a_step_is_kept_without_lag():
    xy, conf = noisy_track(sd=0.3)
    xy[150:, 0, 0] += 40.0  # the animal jumps between frames 149 and 150
    smoothed = smooth_track(xy, conf, SmoothingParams.for_fps(FPS))[:, 0, 0]
    crossing = int(np.argmax(smoothed > 120.0))  # where it passes halfway
    assert abs(crossing - 150) <= 1
    assert abs(np.median(smoothed[160:]) - 140.0) < 0.5  # the new position is reached fully


def test_a_moving_point_is_not_delayed():
    t = np.arange(300)
    xy = np.zeros((300, 1, 2))
    xy[:, 0, 0] = 50 * np.sin(2 * np.pi * t / 45)  # a fast back-and-forth, 1.5 s per cycle
    smoothed = smooth_track(xy, np.ones((300, 1)), SmoothingParams.for_fps(FPS))
    lags = range(-5, 6)
    corr = [np.sum(np.roll(smoothed[20:-20, 0, 0], lag) * xy[20:-20, 0, 0]) for lag in lags]
    assert lags[int(np.argmax(corr))] == 0


def test_low_confidence_points_are_dropped_and_short_gaps_filled():
    xy, conf = noisy_track(sd=0.1)
    params = SmoothingParams.for_fps(FPS)
    xy[100:103, 0] = 500.0  # a three-frame swap to a wrong spot, with low confidence
    conf[100:103, 0] = 0.05
    conf[200 : 200 + params.max_gap + 5, 1] = 0.01  # lost for longer than the gap limit
    missing = low_confidence(conf, params.context)
    assert missing[100:103, 0].all() and not missing[:100, 0].any()
    smoothed = smooth_track(xy, conf, params)
    assert np.all(np.abs(smoothed[95:110, 0] - 100.0) < 1.0)  # interpolated, not pulled to 500
    assert np.isnan(smoothed[200 : 200 + params.max_gap + 5, 1]).all()  # too long: left empty
    assert np.isfinite(smoothed[:200, 1]).all()


def test_gaps_at_the_ends_are_not_invented():
    xy = np.arange(10, dtype=float)[:, None, None].repeat(2, axis=2)
    missing = np.zeros((10, 1), bool)
    missing[:2] = missing[-1] = True
    filled = fill_gaps(xy, missing, max_gap=5)
    assert np.isnan(filled[:2]).all() and np.isnan(filled[-1]).all()


def test_savgol_keeps_a_quadratic_and_stays_finite_up_to_holes():
    t = np.arange(40, dtype=float)
    values = 0.05 * t**2 - t
    values[20] = np.nan
    out = savgol(values, 9)
    np.testing.assert_allclose(out[np.isfinite(values)], values[np.isfinite(values)], atol=1e-9)
    assert np.isnan(out[20])


@pytest.mark.parametrize("batch", [1, 7, 32])
def test_streaming_equals_the_whole_track_and_resumes_exactly(batch):
    xy, conf = noisy_track(t=200)
    conf[50:54, 1] = 0.01
    params = SmoothingParams.for_fps(FPS)
    whole = smooth_track(xy, conf, params)

    def stream(first, skip):
        smoother, parts = StreamingSmoother(params, first, skip), []
        for i in range(first, 200, batch):
            at, out = smoother.push(xy[i : i + batch], conf[i : i + batch], final=i + batch >= 200)
            assert at == first + skip + sum(len(p) for p in parts)
            parts.append(out)
        return np.concatenate(parts)

    np.testing.assert_array_equal(stream(0, 0), whole)
    start = 120  # a resumed run re-reads `behind` frames before it as context
    first = start - params.behind
    np.testing.assert_array_equal(stream(first, start - first), whole[start:])


def test_outliers_find_spikes_low_confidence_and_broken_bones():
    xy, conf = noisy_track(t=600, k=2, sd=0.2)
    xy[:, 1, 0] += 30.0  # keypoint 1 sits 30 px right of keypoint 0
    labeled = xy[::10].copy()
    xy[100, 0] += 60.0  # a one-frame jump
    conf[300, 1] = 0.05  # an unsure frame
    xy[500, 1, 0] += 25.0  # a bone 80% too long for a few frames, smoothly (no spike)
    bones = BoneStats.from_labels(labeled, bone_pairs(2, []))
    scores = outlier_scores(xy, conf, bones)
    picks = pick_spread(scores, 3)
    assert picks == [100, 300, 500]



def test_several_animals_are_scored_each_on_its_own_and_a_lost_animal_counts():
    """Two animals in slots by track id: a jump of one, a frame where the other is missing
    while its track goes on, and the second animal joining late (not a miss before it came)."""
    a_xy, a_conf = noisy_track(t=400, k=2, sd=0.2, seed=1)
    b_xy, b_conf = noisy_track(t=400, k=2, sd=0.2, seed=2)
    b_xy += 200.0  # far from the first: mixing the two would look like jumps everywhere
    a_xy[50, 0] += 60.0  # a one-frame jump of the first animal
    b_xy[250], b_conf[250] = np.nan, np.nan  # the second animal not found on frame 250
    b_xy[:100], b_conf[:100] = np.nan, np.nan  # it enters the video at frame 100
    rows = [(f, n, xy[f], conf[f], 0.9) for f in range(400)
            for n, (xy, conf) in enumerate([(a_xy, a_conf), (b_xy, b_conf)])
            if np.isfinite(conf[f]).all()]  # fmt: skip
    frame, track, xy, conf, score = (np.array(c) for c in zip(*rows))
    arr_xy, arr_conf, arr_score = track_arrays(400, 2, frame, track, xy, conf, score)
    assert arr_xy.shape == (400, 2, 2, 2) and np.isnan(arr_score[:100, 1]).all()
    np.testing.assert_array_equal(arr_xy[300, 1], b_xy[300].astype(np.float32))
    scores = animal_outlier_scores(arr_xy, arr_conf, None)
    assert pick_spread(scores, 2) == [50, 250]
    before_b = np.delete(scores[:100], [49, 50, 51])  # the first animal's jump aside
    assert before_b.max() < 10 < scores[250]  # before the second came, nothing was missed

def test_picks_spread_over_the_video_and_skip_taken_frames():
    scores = np.zeros(1000)
    scores[400:420] = np.linspace(10, 20, 20)  # every bad frame in one burst
    picks = pick_spread(scores, 10, exclude=[419])
    assert len(picks) == 10 and 419 not in picks
    assert np.min(np.diff(picks)) >= 1000 // (3 * 10)
    assert len(pick_spread(scores[:5], 10)) == 5  # a short video gives what it has
