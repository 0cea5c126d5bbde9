"""A whole video's predictions: the instances of a frame, the mean confidence per frame, a
resumed run appended."""

from __future__ import annotations

import numpy as np

from kpstudio.gui.video_player_predictions import VideoPredictions


def test_single_instance_frames_and_mean_confidence():
    xy = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2)
    conf = np.array([[0.2, 0.4], [np.nan, 0.8], [np.nan, np.nan]], np.float32)
    preds = VideoPredictions.single("r1", xy, conf)
    assert preds.frames == 3 and preds.covers(2) and not preds.covers(3)
    (p,) = preds.at(1)
    np.testing.assert_array_equal(p.xy, xy[1])
    assert (p.instance, p.score) == (0, 1.0) and preds.at(3) == []
    np.testing.assert_allclose(preds.mean_confidence(), [0.3, 0.8, np.nan])
    more = VideoPredictions.single("r1", xy[:1] + 100, conf[:1])
    both = preds.extended(more)
    assert both.frames == 4
    np.testing.assert_array_equal(both.at(3)[0].xy, xy[0] + 100)


def test_every_instance_found_on_a_frame_is_given_and_missing_ones_are_not():
    xy = np.zeros((2, 3, 1, 2), np.float32)
    conf = np.full((2, 3, 1), 0.5, np.float32)
    score = np.array([[0.9, 0.6, np.nan], [0.8, np.nan, np.nan]], np.float32)
    preds = VideoPredictions("r2", xy, conf, score)
    assert [p.instance for p in preds.at(0)] == [0, 1]
    assert [p.score for p in preds.at(1)] == [np.float32(0.8)]
