"""Sanity hints while labeling: swapped left/right pairs and bones of unusual length."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpstudio.core.label_checks import sanity_warnings
from kpstudio.core.labelset import Instance
from kpstudio.core.skeleton import Skeleton

# A mouse seen from above, nose up (image y grows downwards).
TEMPLATE = {
    "nose": (0, -40), "left_ear": (-12, -25), "right_ear": (12, -25), "neck": (0, -15),
    "left_paw": (-15, 5), "right_paw": (15, 5), "hip": (0, 20), "tail": (0, 50),
}  # fmt: skip
SKELETON = Skeleton.create(
    TEMPLATE,
    edges=[("nose", "neck"), ("left_ear", "neck"), ("right_ear", "neck"), ("neck", "hip"),
           ("neck", "left_paw"), ("neck", "right_paw"), ("hip", "tail")],
    flip_pairs=[("left_ear", "right_ear"), ("left_paw", "right_paw")],
)  # fmt: skip
SHAPE = np.array(list(TEMPLATE.values()), dtype=np.float64)


def place(angle: float, scale: float, shift=(0.0, 0.0), shape=SHAPE) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return shape @ np.array([[c, s], [-s, c]]) * scale + np.asarray(shift)


def inst(xy: np.ndarray, absent: tuple[str, ...] = ()) -> Instance:
    xy = np.array(xy, dtype=np.float64)
    vis = np.full(len(xy), 2, dtype=np.int8)
    for name in absent:
        xy[SKELETON.index(name)] = np.nan
        vis[SKELETON.index(name)] = 0
    return Instance(xy, vis)


def references(n: int = 10, seed: int = 1, jitter: float = 1.0) -> list[Instance]:
    """Consistent labels: one shape at random rotations, shifts and sizes, clicked a bit off."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        xy = place(rng.uniform(0, 2 * math.pi), rng.uniform(0.5, 2.0), rng.uniform(0, 500, 2))
        out.append(inst(xy + rng.normal(0, jitter, xy.shape)))
    return out


def swapped(xy: np.ndarray, a: str, b: str) -> np.ndarray:
    xy = xy.copy()
    ia, ib = SKELETON.index(a), SKELETON.index(b)
    xy[[ia, ib]] = xy[[ib, ia]]
    return xy


def stretched(xy: np.ndarray, fixed: str, moved: str, factor: float) -> np.ndarray:
    xy = xy.copy()
    i, j = SKELETON.index(fixed), SKELETON.index(moved)
    xy[j] = xy[i] + factor * (xy[j] - xy[i])
    return xy


CURRENT = place(0.7, 1.3, (200, 150))


def test_consistent_labels_give_no_hints():
    refs = references()
    assert sanity_warnings(SKELETON, inst(CURRENT), refs) == {}
    for i, ref in enumerate(refs):  # each reference against the rest, jitter and all
        assert sanity_warnings(SKELETON, ref, refs[:i] + refs[i + 1 :]) == {}


def test_swapped_pair_warns_both_keypoints():
    hints = sanity_warnings(SKELETON, inst(swapped(CURRENT, "left_ear", "right_ear")), references())
    assert set(hints) == {"left_ear", "right_ear"}
    assert hints["left_ear"] == "left_ear and right_ear look swapped compared with 10 other images"


def test_swapped_paws_found_with_ears_and_tail_missing():
    xy = swapped(CURRENT, "left_paw", "right_paw")
    hints = sanity_warnings(SKELETON, inst(xy, absent=("left_ear", "tail")), references())
    assert set(hints) == {"left_paw", "right_paw"}


def test_stretched_bone_warns_its_keypoints():
    xy = stretched(CURRENT, "hip", "tail", 3.0)
    assert set(sanity_warnings(SKELETON, inst(xy), references())) == {"hip", "tail"}
    hints = sanity_warnings(SKELETON, inst(xy), references(jitter=0.0))
    assert hints["tail"] == hints["hip"] == "hip–tail is 3.0× its usual length"


def test_shrunk_bone_warns():
    xy = stretched(CURRENT, "neck", "nose", 0.3)
    assert set(sanity_warnings(SKELETON, inst(xy), references())) == {"nose", "neck"}
    hints = sanity_warnings(SKELETON, inst(xy), references(jitter=0.0))
    assert hints["nose"] == "nose–neck is only 0.30× its usual length"


def test_uniformly_scaled_instance_does_not_warn():
    assert sanity_warnings(SKELETON, inst(place(2.0, 3 * 1.3, (900, 40))), references()) == {}
    assert sanity_warnings(SKELETON, inst(place(2.0, 0.05, (9, 4))), references()) == {}


def test_two_problems_on_one_keypoint_are_both_said():
    xy = stretched(swapped(CURRENT, "left_paw", "right_paw"), "neck", "right_paw", 4.0)
    hints = sanity_warnings(SKELETON, inst(xy), references())
    assert "swapped" in hints["right_paw"] and "its usual length" in hints["right_paw"]


def test_too_few_references_stay_quiet():
    bad = inst(stretched(swapped(CURRENT, "left_ear", "right_ear"), "hip", "tail", 3.0))
    assert sanity_warnings(SKELETON, bad, references(2)) == {}
    assert sanity_warnings(SKELETON, bad, []) == {}
    # Enough instances, but the pair is labeled on only two of them.
    refs = [inst(r.xy, absent=("right_ear",)) if i > 1 else r for i, r in enumerate(references())]
    assert "left_ear" not in sanity_warnings(SKELETON, bad, refs)


def test_absent_and_nan_keypoints_are_ignored():
    xy = swapped(CURRENT, "left_ear", "right_ear")
    # Only one ear labeled: no pair to judge.
    assert "left_ear" not in sanity_warnings(
        SKELETON, inst(xy, absent=("right_ear",)), references()
    )
    # Visibility 0 with stale coordinates, and NaN with a visibility set, both count as absent.
    stale = inst(stretched(CURRENT, "hip", "tail", 5.0))
    stale.visibility[SKELETON.index("tail")] = 0
    assert sanity_warnings(SKELETON, stale, references()) == {}
    nan = inst(CURRENT)
    nan.xy[SKELETON.index("nose")] = np.nan
    refs = [inst(r.xy, absent=("nose", "hip")) for r in references()]
    assert sanity_warnings(SKELETON, nan, refs) == {}
    # Everything absent: nothing to say, nothing raised.
    assert sanity_warnings(SKELETON, Instance.empty(len(SKELETON)), refs) == {}
    assert sanity_warnings(SKELETON, inst(CURRENT), [Instance.empty(len(SKELETON))] * 5) == {}


def test_split_references_give_no_swap_hint():
    """Half the images mirrored (seen from below): no clear majority, so no hint either way."""
    refs = references()
    mirrored = [inst(r.xy * np.array([-1.0, 1.0])) for r in refs[:5]]
    hints = sanity_warnings(SKELETON, inst(swapped(CURRENT, "left_ear", "right_ear")),
                            mirrored + refs[5:])  # fmt: skip
    assert "left_ear" not in hints


def test_keypoints_on_one_spot_are_named_by_the_bone_they_collapse():
    # Both ears on one spot: the pair has no side to judge and, the mouse being symmetric,
    # every bone keeps its length: nothing to say.
    xy = CURRENT.copy()
    xy[SKELETON.index("left_ear")] = xy[SKELETON.index("right_ear")]
    assert sanity_warnings(SKELETON, inst(xy), references()) == {}
    # The left ear clicked on the neck: the bone between them has no length left, and both
    # of its ends say so.
    xy = CURRENT.copy()
    xy[SKELETON.index("left_ear")] = xy[SKELETON.index("neck")]
    said = "left_ear–neck is only 0.00× its usual length"
    assert sanity_warnings(SKELETON, inst(xy), references()) == {"left_ear": said, "neck": said}


def test_skeleton_without_edges_or_pairs():
    bare = Skeleton.create(["a", "b", "c"])
    refs = [
        Instance(np.random.default_rng(i).uniform(0, 9, (3, 2)), np.full(3, 2)) for i in range(5)
    ]
    assert sanity_warnings(bare, refs[0], refs[1:]) == {}


@settings(max_examples=60, deadline=None)
@given(
    angle=st.floats(0, 2 * math.pi),
    scale=st.floats(0.05, 50),
    dx=st.floats(-1e4, 1e4),
    dy=st.floats(-1e4, 1e4),
    seed=st.integers(0, 1000),
)
def test_rigid_motion_and_uniform_scale_never_warn(angle, scale, dx, dy, seed):
    refs = references(seed=seed, jitter=0.5)
    assert sanity_warnings(SKELETON, inst(place(angle, scale, (dx, dy))), refs) == {}


@pytest.mark.parametrize("pair", SKELETON.flip_pairs)
def test_every_swapped_pair_is_found_at_any_angle(pair):
    for angle in np.linspace(0, 2 * math.pi, 13):
        xy = swapped(place(angle, 0.8, (50, 60)), *pair)
        assert set(sanity_warnings(SKELETON, inst(xy), references())) == set(pair)
