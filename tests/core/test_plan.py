"""The fingerprint of a label set and the plan made from it: synthetic sets with known answers,
and the shared real sets (skipped when absent)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from conftest import SHARED

from kpstudio.core.fingerprint import fingerprint, from_labelset
from kpstudio.core.plan import (
    BASE_FIELD,
    CONTEXT_FIELD,
    MAX_CONTEXT,
    MAX_HEATMAP_VALUES,
    MIN_CELLS,
    MIN_FINDER_SIDE,
    MIN_OBJECT_SPAN,
    make_plan,
)

NAMES = ("a", "b", "c", "d")


def synthetic(frame, span, gap, n=40, objects=1, seed=0, names=NAMES, labeled=None):
    """n frames of frame=(w, h), each with `objects` objects: keypoints a and b `gap` px apart,
    c and d spanning a box of side `span`, placed at random inside the frame."""
    rng = np.random.default_rng(seed)
    w, h = frame
    images = []
    for _ in range(n):
        instances = []
        for _ in range(objects):
            x0, y0 = rng.uniform(0, w - span), rng.uniform(0, h - span)
            xy = np.array([[x0, y0], [x0 + gap, y0], [x0 + span / 2, y0 + span],
                           [x0 + span, y0 + span / 2]])  # fmt: skip
            vis = np.full(len(names), 2, dtype=np.int8) if labeled is None else labeled(rng)
            xy[vis == 0] = np.nan
            instances.append((xy, vis))
        images.append((w, h, instances))
    return images


def test_fingerprint_figures():
    occluded = lambda rng: np.array([2, 2, 1, 2], dtype=np.int8)  # noqa: E731
    fp = fingerprint(NAMES, synthetic((640, 480), 100, 10, labeled=occluded), flip_pairs=1)
    assert fp.images == 40 and fp.objects == 40
    assert fp.frame_side == 640 and (fp.frame_width, fp.frame_height) == (640, 480)
    assert fp.object_span["median"] == pytest.approx(100)
    assert fp.closest_pair == {"a": "a", "b": "b", "distance": pytest.approx(10)}
    assert fp.labeled_share == 1.0 and fp.occluded_share == pytest.approx(0.25)
    assert fp.objects_per_image["max"] == 1 and fp.keypoints_per_object == 4
    json.dumps(fp.to_dict())  # what the run config and the manifest store


def test_only_pairs_usually_labeled_together_count():
    # b is labeled in a third of the objects: a–b (10 px) must not set the detail.
    def sometimes_b(rng):
        return np.array([2, 2 if rng.uniform() < 0.33 else 0, 2, 2], dtype=np.int8)

    fp = fingerprint(NAMES, synthetic((640, 480), 100, 10, labeled=sometimes_b))
    assert fp.keypoint_share["b"] < 0.5
    assert fp.closest_pair["distance"] > 10
    with pytest.raises(ValueError, match="no labeled images"):
        fingerprint(NAMES, [(640, 480, [(np.full((4, 2), np.nan), np.zeros(4, np.int8))])])


def test_small_objects_in_big_frames_are_cropped_at_a_scale_that_keeps_detail():
    fp = fingerprint(NAMES, synthetic((960, 720), 120, 20))
    plan = make_plan(fp)
    # Fitting the frame into 320 px would shrink the objects to 40 px; the plan enlarges them.
    assert plan.scale > 320 / 960
    assert 120 * plan.scale >= MIN_OBJECT_SPAN
    assert plan.path == "crops" and 0 < plan.crop_size < plan.input_size
    assert plan.crop_size >= 1.3 * 120 * plan.scale  # the whole object with a margin
    assert plan.cells >= MIN_CELLS and plan.stride == 4
    assert plan.input_size % 32 == 0 and plan.crop_size % 32 == 0


def test_keypoints_three_pixels_apart_get_two_cells():
    fp = fingerprint(NAMES, synthetic((200, 200), 60, 3))
    plan = make_plan(fp)
    assert 3 * plan.scale / plan.stride >= MIN_CELLS
    assert plan.cells == pytest.approx(3 * plan.scale / plan.stride, rel=0.02)
    # Stride 4 would need scale 2.67, over the budget: the finer heatmap is chosen instead.
    assert plan.stride == 2
    assert any("stride 4 would give" in s for s in plan.sentences)


def test_many_keypoints_keep_the_heatmaps_within_the_budget():
    """68 landmarks on ~140-px face crops, two of them (closed lips) 1.5 px apart: 2 cells
    would need 68 maps of 144² cells per input; the plan stays within the heatmap budget and
    says that the rule is not met."""
    rng = np.random.default_rng(0)
    angles = np.linspace(0, 2 * np.pi, 67, endpoint=False)
    face = np.c_[70 + 60 * np.cos(angles), 70 + 60 * np.sin(angles)]
    face = np.vstack([face, face[0] + [1.5, 0]])
    images = [(140, 140, [(face + rng.normal(0, 0.3, face.shape), np.full(68, 2, np.int8))])
              for _ in range(30)]  # fmt: skip
    plan = make_plan(fingerprint([f"p{i}" for i in range(68)], images))
    side = plan.crop_size or plan.input_size
    assert 68 * (side / plan.stride) ** 2 <= MAX_HEATMAP_VALUES
    assert plan.cells < MIN_CELLS
    assert any("the most the compute budget allows" in s for s in plan.sentences)


def test_one_object_spanning_the_frame_trains_on_whole_images():
    fp = fingerprint(NAMES, synthetic((400, 400), 380, 40))
    plan = make_plan(fp)
    assert plan.crop_size == 0 and plan.path == "whole-image"
    assert plan.input_size == 320 and plan.stride == 4
    assert any("whole frames" in s for s in plan.sentences)


@pytest.mark.parametrize("span", [40, 120, 200, 380])
def test_context_blocks_widen_the_field_to_the_object_and_no_further(span):
    """The fewest context blocks whose receptive field spans the object at the planned scale
    (capped): none for objects the plain encoder covers."""
    plan = make_plan(fingerprint(NAMES, synthetic((400, 400), span, max(8, span / 5))))
    wanted = plan.fingerprint.object_span["median"] * plan.scale
    field = BASE_FIELD + CONTEXT_FIELD * plan.context
    assert field >= wanted or plan.context == MAX_CONTEXT
    assert plan.context == 0 or field - CONTEXT_FIELD < wanted
    assert plan.settings()["context"] == plan.context
    assert any(f"{plan.context} context block(s)" in s for s in plan.sentences)
    if span == 40:  # 40 px at scale 1.2 (the object rule): well inside the plain field
        assert plan.context == 0
    if span == 380:  # one object across the frame: ~300 px at scale 0.8
        assert plan.context == 2


def test_several_objects_per_image_go_top_down():
    fp = fingerprint(NAMES, synthetic((640, 640), 80, 16, objects=3))
    plan = make_plan(fp)
    assert fp.objects_per_image["max"] == 3 and fp.objects == 120
    assert plan.preferred == plan.path == "top-down" and plan.top_down
    assert not plan.notes
    assert any("3 objects per image" in s for s in plan.sentences)
    # The finder sees the typical object FINDER_OBJECT_SPAN px across, at most the frame.
    assert plan.finder_size == max(MIN_FINDER_SIDE, min(plan.input_size, 640 * 48 // 80))
    assert plan.crop_size >= 1.3 * 80 * plan.scale  # the pose model's crop holds an object


def test_the_user_can_keep_a_single_object_model_and_is_told_what_it_misses():
    fp = fingerprint(NAMES, synthetic((640, 640), 80, 16, objects=3))
    plan = make_plan(fp, top_down=False)
    assert plan.preferred == "top-down" and plan.path != "top-down" and plan.finder_size == 0
    assert plan.notes and "3 objects per image" in plan.notes[0]
    assert "first object" in plan.notes[0]


def test_a_frame_stride_4_would_enlarge_gets_stride_2_when_cheaper():
    """Keypoints 12 px apart on 110-px objects in 640-px frames: stride 4 needs a 448 input
    (2 cells), stride 2 gets 3 cells at 320, which costs 1.6 × 320² < 448² to predict."""
    fp = fingerprint(NAMES, synthetic((640, 480), 110, 12))
    plan = make_plan(fp)
    assert (plan.input_size, plan.stride) == (320, 2)
    assert any("costing" in s for s in plan.sentences)


def test_the_plan_is_deterministic_and_ignores_image_order():
    images = synthetic((800, 600), 90, 12, n=60, seed=3)
    first = make_plan(fingerprint(NAMES, images), minutes=5).to_dict()
    shuffled = list(images)
    random.Random(1).shuffle(shuffled)
    assert make_plan(fingerprint(NAMES, images), minutes=5).to_dict() == first
    assert make_plan(fingerprint(NAMES, shuffled), minutes=5).to_dict() == first
    assert any("5 minutes" in s for s in first["sentences"])


def _shared_plan(name):
    from kpstudio.core.formats import read_labels

    path = SHARED / "datasets" / name / "annotations.json"
    if not path.is_file():
        pytest.skip(f"{name} is not present")
    return make_plan(from_labelset(read_labels("coco", path)))


def test_openfield_keeps_its_320_px_letterbox_with_stride_2():
    """Snout and ears ~12 px apart in 640-px frames: 1.5 cells at the old 320-px stride-4
    setting; stride 2 at the same scale gives 3 cells for less than the 448-px input stride 4
    would need (measured: 1.82 px in 10 CPU-minutes, benchmarks/bench_quality.py)."""
    plan = _shared_plan("dlc_openfield_mouse")
    assert (plan.input_size, plan.stride, plan.crop_size) == (320, 2, 128)
    assert plan.context == 0  # the mouse is ~56 px across at this scale
    assert plan.augmentation == {"scale": 0.2}
    assert plan.preferred == plan.path == "crops"


@pytest.mark.parametrize("name", ["dlc_openfield_mouse", "lp_mirror_mouse", "sleap_centered_pair"])
def test_shared_sets_obey_the_two_cell_rule(name):
    plan = _shared_plan(name)
    pair = plan.fingerprint.closest_pair
    assert pair["distance"] * plan.scale / plan.stride >= MIN_CELLS - 1e-6
    assert len(plan.sentences) >= 6
    if name == "lp_mirror_mouse":  # one mouse spanning both views
        assert plan.path == "whole-image" and plan.context > 0
    if name == "sleap_centered_pair":  # two flies per frame
        assert plan.preferred == plan.path == "top-down" and plan.finder_size
