"""Keypoint relations learned from labels: the line that predicts each coordinate best."""

from __future__ import annotations

import numpy as np
import pytest

from kpstudio.core.keypoint_relations import (
    MIN_SHARED,
    check_relations,
    describe,
    fit_relations,
    scaled,
)


def mirror_rig(n=40, seed=0):
    """Keypoint 0 a paw in the side view, 1 the same paw in the mirror (same x, its own y), 2
    wanders on its own."""
    rng = np.random.default_rng(seed)
    xy = np.zeros((n, 3, 2))
    xy[:, 0, 0] = rng.uniform(20, 300, n)
    xy[:, 0, 1] = rng.uniform(50, 100, n)
    xy[:, 1, 0] = 1.05 * xy[:, 0, 0] + 3 + rng.normal(0, 1.5, n)
    xy[:, 1, 1] = rng.uniform(200, 260, n)
    xy[:, 2] = rng.uniform(0, 320, (n, 2))
    return xy


def test_the_mirror_view_x_follows_the_side_view_x_and_not_its_own_y():
    xy = mirror_rig()
    rows = fit_relations(xy, np.ones(xy.shape[:2], bool), min_sd=0.5)
    by_target = {(r[0], r[1]): r for r in rows}
    paw_x = by_target[(1, 0)]
    assert paw_x[2:4] == [0, 0]  # from keypoint 0's x
    assert paw_x[4] == pytest.approx(1.05, abs=0.02)
    assert 1.0 < paw_x[6] < 2.2  # the spread the line leaves (1.5 px of noise)
    assert all(r[2] != r[0] for r in rows)  # never from its own other coordinate
    wandering = by_target[(2, 0)]
    assert wandering[6] > 50  # nothing predicts it: a loose relation, widely spread
    assert check_relations(rows, 3) is None


def test_unlabeled_points_do_not_count_and_too_few_shared_images_give_no_relation():
    xy = mirror_rig(n=MIN_SHARED + 4)
    visible = np.ones(xy.shape[:2], bool)
    xy[:6, 0] = 1e4  # garbage where unlabeled
    visible[:6, 0] = False
    rows = fit_relations(xy, visible, min_sd=0.5)
    assert not any(r[0] == 1 and r[2] == 0 for r in rows)  # 6 shared images: below MIN_SHARED
    visible[:6, 0] = True
    xy[:6, 0] = mirror_rig(n=MIN_SHARED + 4)[:6, 0]
    xy[3, 1] = np.nan  # a NaN label counts as unlabeled
    rows = fit_relations(xy, visible, min_sd=0.5)
    assert all(np.isfinite(r[4:]).all() for r in rows)
    assert fit_relations(xy[:3], visible[:3], min_sd=0.5) == []


def test_a_constant_coordinate_gets_the_floor_spread_and_words():
    xy = mirror_rig()
    xy[:, 2, 0] = 100.0  # a head-fixed nose: always at x = 100
    rows = fit_relations(xy, np.ones(xy.shape[:2], bool), min_sd=2.0)
    nose_x = next(r for r in rows if r[:2] == [2, 0])
    assert nose_x[6] == 2.0 and abs(nose_x[4]) < 1e-6
    assert nose_x[5] == pytest.approx(100)
    assert scaled(rows, 4.0)[rows.index(nose_x)][6] == 8.0
    words = describe(rows, ["paw_side", "paw_mirror", "nose"])
    assert "nose x stays near x = 100 px (±2.0 px)" in words


def test_a_model_files_relations_are_checked():
    good = [[1, 0, 0, 0, 1.0, 3.0, 2.0]]
    assert check_relations(good, 3) is None
    assert "at most" in check_relations(good * 7, 3)
    assert "names a keypoint" in check_relations([[5, 0, 0, 0, 1.0, 0.0, 1.0]], 3)
    assert "names a keypoint" in check_relations([[1, 2, 0, 0, 1.0, 0.0, 1.0]], 3)
    assert "whole numbers" in check_relations([[1.0, 0, 0, 0, 1.0, 0.0, 1.0]], 3)
    assert "finite" in check_relations([[1, 0, 0, 0, float("nan"), 0.0, 1.0]], 3)
    assert "spread above 0" in check_relations([[1, 0, 0, 0, 1.0, 0.0, 0.0]], 3)
    assert "7 numbers" in check_relations([[1, 0, 0]], 3)
    assert "list" in check_relations("no", 3)
