"""The player's frame source: the frame asked for (forward, back, far jumps), the newest request
wins over ones not started, a frame past the end is reported, a predictor's answers come with
their frame."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from kpstudio.core.prediction_files import Prediction  # noqa: E402
from kpstudio.gui.video_frame_source import KEPT_FRAMES, VideoFrameSource  # noqa: E402

FRAMES, W, H = 120, 48, 32


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (W, H))
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot write MJPG video")
    for i in range(FRAMES):
        frame = np.empty((H, W, 3), np.uint8)
        # The index in two coarse grey bands, which JPEG's small errors cannot blur into another.
        frame[: H // 2] = 16 * (i // 16) + 8
        frame[H // 2 :] = 16 * (i % 16) + 8
        writer.write(frame)
    writer.release()
    return path


def index_of(frame: np.ndarray) -> int:
    high, low = (round((float(band.mean()) - 8) / 16) for band in np.split(frame, 2))
    return 16 * high + low


@pytest.fixture
def source(qtbot, clip):
    src = VideoFrameSource(clip)
    yield src
    src.close()


def fetch(qtbot, source, index, predict=True):
    with qtbot.waitSignal(source.frame_ready, timeout=10_000) as blocker:
        source.request(index, predict)
    return blocker.args


@pytest.mark.parametrize("order", [[0, 1, 2, 40], [90, 10, 11, 119, 3], [5, 70, 69, 68]])
def test_each_request_gives_the_frame_asked_for(qtbot, source, order):
    for index in order:
        got, frame, predictions = fetch(qtbot, source, index)
        assert got == index and index_of(frame) == index and predictions is None
        assert frame.shape == (H, W, 3) and frame.dtype == np.uint8


def test_frames_behind_are_kept_for_stepping_back(qtbot, source):
    for index in range(10, 10 + KEPT_FRAMES + 5):
        fetch(qtbot, source, index)
    first_kept = 10 + 5
    assert sorted(source._kept) == list(range(first_kept, 10 + KEPT_FRAMES + 5))
    got, frame, _ = fetch(qtbot, source, first_kept)
    assert index_of(frame) == first_kept


def test_past_the_end_is_reported_not_shown(qtbot, source):
    with qtbot.waitSignal(source.past_end, timeout=10_000) as blocker:
        source.request(FRAMES + 3)
    assert blocker.args == [FRAMES + 3]


class SlowModel:
    """A stand-in predictor that holds the worker until released, and answers a fixed point."""

    def __init__(self):
        self.release = threading.Event()
        self.seen: list[int] = []

    def predict_arrays(self, images):
        self.seen.append(index_of(images[0]))
        self.release.wait(10)
        xy = np.array([[1.0, 2.0]])
        return [Prediction(None, xy, np.array([0.5]))]


def test_the_newest_request_wins_and_predictions_come_with_their_frame(qtbot, source):
    model = SlowModel()
    source.set_predictor(model)
    shown = []
    source.frame_ready.connect(lambda i, frame, preds: shown.append((i, preds)))
    source.request(3)
    qtbot.waitUntil(lambda: model.seen == [3])  # the worker is busy predicting frame 3
    for index in (4, 5, 6, 7):  # a scrub while it is busy: only the last one matters
        source.request(index)
    source.request(8, predict=False)
    model.release.set()
    qtbot.waitUntil(lambda: len(shown) == 2)
    qtbot.wait(100)
    assert [i for i, _ in shown] == [3, 8] and model.seen == [3]
    assert shown[0][1][0].confidence[0] == 0.5 and shown[1][1] is None


def test_a_failing_model_is_reported_and_the_source_goes_on(qtbot, source):
    class Broken:
        def predict_arrays(self, images):
            raise ValueError("no weights")

    source.set_predictor(Broken())
    with qtbot.waitSignal(source.failed, timeout=10_000) as blocker:
        source.request(2)
    assert blocker.args[0] == 2 and "no weights" in blocker.args[1]
    assert str(source.path) in blocker.args[1]
    source.set_predictor(None)
    assert fetch(qtbot, source, 4)[0] == 4
