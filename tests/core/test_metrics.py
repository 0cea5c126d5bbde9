from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpstudio.core.metrics import (
    COCO_SIGMAS,
    bbox_diagonal,
    nme,
    oks,
    pck,
    pck_curve,
    pck_per_keypoint,
    pixel_errors,
    summarize,
)

NAN = float("nan")


def test_pixel_errors_are_euclidean_and_nan_where_not_counted():
    gt = np.array([[[0, 0], [0, 0], [NAN, NAN], [7, 7]]], float)
    pred = np.array([[[0, 0], [3, 4], [1, 1], [100, 100]]], float)
    visible = np.array([[True, True, True, False]])  # an absent point flagged visible is ignored
    errors = pixel_errors(pred, gt, visible)
    assert errors.shape == (1, 4)
    np.testing.assert_array_equal(errors, [[0.0, 5.0, NAN, NAN]])


def test_absent_keypoint_never_counts_as_zero_error():
    gt = np.array([[[10, 10], [NAN, NAN]]])
    pred = np.array([[[20, 10], [NAN, NAN]]])  # nothing predicted where nothing is labelled: fine
    errors = pixel_errors(pred, gt, [[True, False]])
    assert np.nanmean(errors) == 10.0
    assert pck(errors, 50.0) == 1.0  # 1 of 1 counted, not 2 of 2


def test_nan_prediction_for_a_labelled_point_is_refused():
    gt = np.zeros((1, 2, 2))
    pred = np.array([[[0, 0], [NAN, 1]]])
    with pytest.raises(ValueError, match="1 labelled keypoints"):
        pixel_errors(pred, gt, [[True, True]])


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="shapes disagree"):
        pixel_errors(np.zeros((2, 3, 2)), np.zeros((2, 4, 2)), np.ones((2, 4), bool))


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3), min_size=8, max_size=8),
    st.floats(-2.0, 2.0),
)
def test_errors_do_not_depend_on_a_shared_coordinate_shift(values, shift):
    # e.g. pixel centres at .0 versus .5: same errors as long as both arrays agree.
    pts = np.array(values).reshape(2, 2, 1, 2)
    pred, gt = pts[0].reshape(1, 2, 2), pts[1].reshape(1, 2, 2)
    vis = np.ones((1, 2), bool)
    np.testing.assert_allclose(
        pixel_errors(pred + shift, gt + shift, vis), pixel_errors(pred, gt, vis), atol=1e-6
    )


def test_bbox_diagonal_uses_only_labelled_points():
    gt = np.array(
        [
            [[0, 0], [3, 4], [1, 1], [500, 500]],  # last one not visible: outside the box
            [[5, 5], [NAN, NAN], [NAN, NAN], [NAN, NAN]],  # one point: no box
            [[NAN, NAN]] * 4,
        ]
    )
    visible = np.array([[True, True, True, False], [True, False, False, False], [False] * 4])
    np.testing.assert_array_equal(bbox_diagonal(gt, visible), [5.0, 0.0, 0.0])


ERRORS = np.array([[0.0, 5.0, NAN], [2.0, 10.0, 1.0]])


def test_pck_threshold_is_inclusive():
    assert pck(ERRORS, 5.0) == pytest.approx(4 / 5)  # 0, 5, 2, 1 hit; 10 misses
    assert pck(ERRORS, 4.999) == pytest.approx(3 / 5)
    assert pck(np.array([[1.0]]), 1.0) == 1.0


def test_pck_per_image_threshold_broadcasts_over_keypoints():
    assert pck(ERRORS, np.array([1.0, 2.0])) == pytest.approx(3 / 5)  # 0 | 2, 1
    # NaN threshold (e.g. no bbox) leaves that image out instead of counting misses
    assert pck(ERRORS, np.array([NAN, 2.0])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        pck(ERRORS, np.array([1.0, 2.0, 3.0]))


def test_pck_of_nothing_is_nan_not_zero():
    assert math.isnan(pck(np.full((2, 3), NAN), 5.0))


def test_pck_per_keypoint():
    per_kp = pck_per_keypoint(ERRORS, 5.0)
    np.testing.assert_array_equal(per_kp, [1.0, 0.5, 1.0])
    with_unlabelled = np.column_stack([ERRORS, [NAN, NAN]])
    assert math.isnan(pck_per_keypoint(with_unlabelled, 5.0)[3])


def test_nme_is_mean_of_per_image_normalised_errors():
    errors = np.array([[3.0, 5.0], [NAN, 4.0], [1.0, 1.0]])
    # image means 4 and 4, normalised 4/2 and 4/4; the third image has no valid normaliser
    assert nme(errors, np.array([2.0, 4.0, 0.0])) == pytest.approx(1.5)
    assert math.isnan(nme(np.full((1, 2), NAN), np.array([1.0])))


def test_oks_is_one_for_perfect_predictions():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 200, (3, 17, 2))
    vis = rng.random((3, 17)) > 0.3
    np.testing.assert_allclose(oks(gt, gt, vis, np.array([900.0, 50.0, 1e4]), COCO_SIGMAS), 1.0)


def test_oks_matches_hand_computed_coco_formula():
    gt = np.array([[[10, 10], [50, 50], [0, 0]]], float)
    pred = np.array([[[13, 14], [50, 52], [90, 90]]], float)
    sigmas = np.array([0.1, 0.2, 0.3])
    # vars = (2 sigma)^2 = 0.04, 0.16; e = d^2 / vars / area / 2 with area 100
    e0 = 25 / 0.04 / 100 / 2  # 3.125
    e1 = 4 / 0.16 / 100 / 2  # 0.125
    expected = (math.exp(-e0) + math.exp(-e1)) / 2  # third point not visible: left out
    got = oks(pred, gt, np.array([[True, True, False]]), np.array([100.0]), sigmas)
    assert got[0] == pytest.approx(expected, rel=1e-9)
    assert got[0] == pytest.approx(0.4632169, abs=1e-7)  # (0.043937 + 0.882497) / 2


def test_oks_with_no_labelled_points_is_nan():
    got = oks(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), np.zeros((1, 2), bool), 10.0, [0.1, 0.1])
    assert math.isnan(got[0])


def test_coco_sigmas():
    assert COCO_SIGMAS.shape == (17,)
    assert COCO_SIGMAS[0] == pytest.approx(0.026) and COCO_SIGMAS[-1] == pytest.approx(0.089)


def test_oks_agrees_with_pycocotools():
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(1)
    gt = rng.uniform(0, 300, (17, 2))
    vis = rng.random(17) > 0.25
    pred = gt + rng.normal(0, 6, (17, 2))
    area = 5000.0
    gt_kps = np.column_stack([gt, np.where(vis, 2, 0)]).ravel().tolist()
    coco = COCO()
    coco.dataset = {
        "images": [{"id": 1, "width": 300, "height": 300}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": area,
             "bbox": [0, 0, 300, 300], "keypoints": gt_kps, "num_keypoints": int(vis.sum())}
        ],
    }  # fmt: skip
    coco.createIndex()
    dt_kps = np.column_stack([pred, np.ones(17)]).ravel().tolist()
    dets = coco.loadRes([{"image_id": 1, "category_id": 1, "keypoints": dt_kps, "score": 1.0}])
    ev = COCOeval(coco, dets, "keypoints")
    ev.params.imgIds = [1]
    ev._prepare()
    reference = ev.computeOks(1, 1)[0, 0]

    gt_nan = np.where(vis[:, None], gt, NAN)[None]
    ours = oks(pred[None], gt_nan, vis[None], np.array([area]), COCO_SIGMAS)
    assert 0.05 < reference < 0.99  # a case where the formula's details matter
    assert ours[0] == pytest.approx(reference, rel=1e-12)


def test_summarize_hand_case_and_json():
    gt = np.array([[[0, 0], [30, 40]], [[10, 10], [NAN, NAN]]], float)
    pred = np.array([[[3, 4], [30, 40]], [[10, 12], [99, 99]]], float)
    vis = np.array([[True, True], [True, False]])
    s = summarize(pred, gt, vis, ["nose", "tail"])
    json.dumps(s, allow_nan=False)  # plain JSON, no NaN

    # errors: image 0 → 5, 0 (bbox diagonal 50); image 1 → 2 (one point: no bbox, no pck@alpha)
    assert s["images"] == 2 and s["count"] == 3
    assert s["mean_px"] == pytest.approx(7 / 3) and s["median_px"] == 2.0
    assert s["pck@0.05"] == 0.5  # threshold 2.5 on image 0 only
    assert s["pck@0.1"] == 1.0  # threshold 5, inclusive
    assert s["pck@5.0px"] == 1.0

    nose, tail = s["per_keypoint"]["nose"], s["per_keypoint"]["tail"]
    assert (nose["count"], nose["mean_px"], nose["median_px"]) == (2, 3.5, 3.5)
    assert nose["pck@0.05"] == 0.0 and nose["pck@0.1"] == 1.0
    assert (tail["count"], tail["mean_px"], tail["pck@0.05"]) == (1, 0.0, 1.0)

    first, second = s["per_image"]
    assert first["mean_px"] == 2.5 and first["pck@0.05"] == 0.5
    assert second["mean_px"] == 2.0 and second["pck@0.05"] is None
    assert second["pck@5.0px"] == 1.0
    assert all(type(v) in (float, int, type(None)) for v in first.values())


def test_summarize_keypoint_never_labelled_gives_none():
    gt = np.array([[[0, 0], [NAN, NAN]]])
    s = summarize(gt, gt, [[True, False]], ["a", "b"], alphas=(0.2,), px_thresholds=(1.0, 3))
    assert s["per_keypoint"]["b"] == {
        "count": 0, "mean_px": None, "median_px": None, "pck@0.2": None, "pck@1.0px": None,
        "pck@3px": None,
    }  # fmt: skip
    assert s["per_keypoint"]["a"]["mean_px"] == 0.0
    with pytest.raises(ValueError, match="2 keypoints"):
        summarize(gt, gt, [[True, False]], ["a"])


def test_pck_curve_rises_with_the_threshold_and_matches_pck():
    # One image, bbox 30×40 (diagonal 50): errors 0, 2.5 and 5 px.
    gt = np.array([[[0.0, 0.0], [30.0, 40.0], [10.0, 10.0]]])
    pred = gt + np.array([[[0.0, 0.0], [1.5, 2.0], [3.0, 4.0]]])
    visible = np.ones((1, 3), bool)
    curve = pck_curve(pred, gt, visible, [0.0, 0.05, 0.1, 0.2])
    assert curve == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0])
    errors = pixel_errors(pred, gt, visible)
    assert curve[1] == pytest.approx(pck(errors, 0.05 * 50.0))
    # An image with one labelled keypoint has no diagonal: nothing counts.
    assert pck_curve(pred[:, :1], gt[:, :1], visible[:, :1], [0.1]) == [None]
