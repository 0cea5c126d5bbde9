from __future__ import annotations

import pytest

from kpstudio.core.skeleton import Skeleton, SkeletonError, parse_pairs


def test_names_are_normalised_and_order_kept():
    sk = Skeleton.create(["  snout", "left  ear", "Cafe\u0301"])
    assert sk.keypoints == ("snout", "left ear", "Café")
    assert sk.index("left ear") == 1
    assert sk.index(" Café ") == 2


@pytest.mark.parametrize(
    "names, message",
    [
        (["a", "b", "a"], "'a' appears twice"),
        (["Nose", "nose"], "appears twice"),
        (["a", "  "], "is empty"),
        ([], "at least one keypoint"),
    ],
)
def test_bad_keypoint_names_are_refused(names, message):
    with pytest.raises(SkeletonError, match=message):
        Skeleton.create(names)


def test_edges_and_flip_pairs_are_checked():
    with pytest.raises(SkeletonError, match="unknown keypoint 'c'"):
        Skeleton.create(["a", "b"], edges=[("a", "c")])
    with pytest.raises(SkeletonError, match="to itself"):
        Skeleton.create(["a", "b"], edges=[("a", "a")])
    with pytest.raises(SkeletonError, match="given twice"):
        Skeleton.create(["a", "b"], edges=[("a", "b"), ("b", "a")])
    with pytest.raises(SkeletonError, match="more than one left/right pair"):
        Skeleton.create(["l", "r", "x"], flip_pairs=[("l", "r"), ("r", "x")])
    with pytest.raises(SkeletonError, match="#rrggbb"):
        Skeleton.create(["a"], colors=["red"])


def test_flip_permutation_swaps_pairs():
    sk = Skeleton.create(["nose", "l_eye", "r_eye", "tail"], flip_pairs=[("l_eye", "r_eye")])
    assert sk.flip_permutation() == [0, 2, 1, 3]


def test_dict_round_trip_and_cli_pairs():
    sk = Skeleton.create(["a", "b-c", "d"], parse_pairs("a:b-c,b-c:d"), parse_pairs("a:d"))
    assert sk.edges == (("a", "b-c"), ("b-c", "d"))
    assert Skeleton.from_dict(sk.to_dict()) == sk
    with pytest.raises(SkeletonError, match="a:b"):
        parse_pairs("a-b-c")
