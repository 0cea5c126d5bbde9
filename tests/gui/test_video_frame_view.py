"""The player's picture: every instance given is drawn, keypoints and bones, missing ones not."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QGraphicsLineItem  # noqa: E402

from kpstudio.core.prediction_files import Prediction  # noqa: E402
from kpstudio.core.skeleton import Skeleton  # noqa: E402
from kpstudio.gui.video_frame_view import VideoFrameView  # noqa: E402


def test_every_instance_is_drawn_with_its_bones(qtbot):
    view = VideoFrameView()
    qtbot.addWidget(view)
    view.set_image(np.zeros((60, 80, 3), np.uint8))
    skeleton = Skeleton.create(["nose", "neck", "tail"], [("nose", "neck"), ("neck", "tail")])
    first = Prediction(None, np.array([[10.0, 10], [20, 10], [30, 10]]), np.array([0.9, 0.8, 0.7]))
    second = Prediction(None, np.array([[10.0, 40], [np.nan, np.nan], [30, 40]]),
                        np.array([0.6, 0.1, 0.5]), instance=1, score=0.7)  # fmt: skip
    view.show_predictions([first, second], skeleton)
    assert [(m.instance, m.keypoint) for m in view.markers] == [
        (0, "nose"), (0, "neck"), (0, "tail"), (1, "nose"), (1, "tail")]  # fmt: skip
    assert (view.markers[3].x, view.markers[3].y) == (10.0, 40.0)
    lines = [i for i in view.scene().items() if isinstance(i, QGraphicsLineItem)]
    # Both bones of the first; none of the second, whose neck is missing.
    assert sorted((ln.line().x1(), ln.line().y1()) for ln in lines) == [(10, 10), (20, 10)]
    view.show_predictions([], skeleton)
    assert view.markers == [] and not any(
        isinstance(i, QGraphicsLineItem) for i in view.scene().items())  # fmt: skip
