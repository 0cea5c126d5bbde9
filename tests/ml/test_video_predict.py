"""The streaming video pipeline: every frame once, in order, in video pixels; smoothing in the
stream equals smoothing the whole track; errors in the reader thread reach the caller."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import TINY_PARAMS, tiny_model

from kpstudio.core.skeleton import Skeleton
from kpstudio.core.tracks import SmoothingParams, smooth_track
from kpstudio.core.video_frames import probe_video
from kpstudio.ml.predictor import Predictor
from kpstudio.ml.video_predict import ArraySink, Sink, predict_video, video_letterbox

FRAMES, W, H = 30, 80, 60


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("v") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (W, H))
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot write MJPG video")
    rng = np.random.default_rng(1)
    for _ in range(FRAMES):
        writer.write(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    writer.release()
    return probe_video(path)


@pytest.fixture(scope="module")
def predictor():
    skeleton = Skeleton.create(["a", "b", "c"])
    manifest = {"skeleton": skeleton.to_dict(), "input_size": 64,
                "architecture": {"name": "default", "params": TINY_PARAMS}}  # fmt: skip
    return Predictor(tiny_model(), manifest)


class Rows(Sink):
    def __init__(self):
        self.frames, self.smooth = [], []

    def write(self, frames, instances, xy, conf, smooth):
        assert (instances == 0).all()
        self.frames += list(frames)
        self.smooth.append(smooth)


def decoded_frames(info) -> list[np.ndarray]:
    cap, out = cv2.VideoCapture(str(info.path)), []
    while True:
        ok, frame = cap.read()
        if not ok:
            return out
        out.append(frame[:, :, ::-1].copy())


def test_the_canvas_is_tight_for_a_convolutional_model(predictor):
    box, h, w = video_letterbox(predictor, 640, 480)
    assert (h, w) == (64, 64)  # 64 × 48 rounds up to 64 × 64 here
    box, h, w = video_letterbox(predictor, 1280, 320)
    assert (h, w) == (32, 64) and box.pad_y == (32 - 16) // 2 and box.pad_x == 0


def test_every_frame_once_in_order_matching_single_images(predictor, video):
    sink = ArraySink()
    times = predict_video(predictor, video, sink, batch_size=8, runtime="tensorflow")
    xy, conf = sink.arrays()
    assert xy.shape == (FRAMES, 3, 2) and conf.shape == (FRAMES, 3)
    assert times.frames == FRAMES and times.inference > 0 and times.decode > 0
    frames = decoded_frames(video)
    for i in (0, 13, FRAMES - 1):
        single = predictor.predict_array(frames[i])
        np.testing.assert_allclose(xy[i], single.xy, atol=0.05)
        np.testing.assert_allclose(conf[i], single.confidence, atol=1e-3)


def test_a_resumed_stream_starts_at_its_frame(predictor, video):
    sink = Rows()
    predict_video(predictor, video, sink, start=17, batch_size=4, runtime="tensorflow")
    assert sink.frames == list(range(17, FRAMES))


def test_streamed_smoothing_equals_smoothing_the_whole_track(predictor, video):
    raw = ArraySink()
    predict_video(predictor, video, raw, batch_size=8, runtime="tensorflow")
    xy, conf = raw.arrays()
    params = SmoothingParams(window=5, max_gap=3, context=6)
    sink = Rows()
    predict_video(predictor, video, sink, smoothing=params, batch_size=4, runtime="tensorflow")
    assert sink.frames == list(range(FRAMES))
    streamed = np.concatenate(sink.smooth)
    np.testing.assert_allclose(streamed, smooth_track(xy, conf, params), atol=1e-4)


def test_a_reader_error_reaches_the_caller(predictor, video, monkeypatch):
    import kpstudio.ml.video_stages as stages

    def broken(path, start):
        raise OSError(f"{path}: gone")

    monkeypatch.setattr(stages, "open_at", broken)
    with pytest.raises(OSError, match="gone"):
        predict_video(predictor, video, ArraySink(), runtime="tensorflow")
