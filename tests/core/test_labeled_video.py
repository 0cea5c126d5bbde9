"""The labeled video of several animals: every instance drawn, each with its track id."""

from __future__ import annotations

import numpy as np
import pytest

from kpstudio.core.labeled_video import LabeledVideoWriter
from kpstudio.core.skeleton import Skeleton


@pytest.fixture
def writer(tmp_path):
    skeleton = Skeleton.create(["a", "b", "c"], edges=[("a", "b"), ("b", "c")])
    out = LabeledVideoWriter(tmp_path / "l.avi", skeleton, 10.0, 160, 120)
    yield out
    out.close()


def test_every_instance_is_drawn_with_its_label_and_the_frame_appended_once(writer):
    frame = np.zeros((120, 160, 3), np.uint8)
    xy = np.array([[[30, 60], [40, 60], [50, 60]], [[110, 80], [120, 80], [130, np.nan]]], float)
    conf = np.ones((2, 3))
    writer.write_all(frame, xy, conf, labels=[3, 12])
    assert writer.frames == 1
    assert frame[58:62, 28:52].any() and frame[78:82, 108:122].any()  # both instances drawn
    # Each label sits above its instance, in light grey: nothing there without labels.
    plain = np.zeros_like(frame)
    writer.write_all(plain, xy, conf)
    above = (slice(0, 57), slice(0, 160))  # the first instance's markers start at y 57.5
    assert (frame[above].max(axis=-1) > 128).sum() > 10
    assert not plain[above].any()
    assert writer.frames == 2


def test_a_frame_without_animals_is_still_written(writer):
    writer.write_all(np.zeros((120, 160, 3), np.uint8), np.zeros((0, 3, 2)), np.zeros((0, 3)))
    assert writer.frames == 1
