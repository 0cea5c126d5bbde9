"""The video player: scrubbing shows the frame asked for, the active model's keypoints are drawn
on it, the whole video is predicted in a Task that Cancel stops (and that resumes), and a frame
is added to the project with its prediction stored, ready to correct."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from conftest import TINY_PARAMS  # noqa: E402
from PySide6.QtCore import QPointF, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication, QPushButton  # noqa: E402

from kpstudio.core.image_reader import read_image  # noqa: E402
from kpstudio.core.predictions import load_prediction  # noqa: E402
from kpstudio.core.runs import record_run, run_folder  # noqa: E402
from kpstudio.gui.video_player import VideoPlayer, open_video_player  # noqa: E402

FRAMES, W, H, FPS = 40, 64, 48, 10.0
WAIT_MS = 120_000  # loading TensorFlow and tracing a model take seconds on a busy machine


def shade(index: int) -> int:
    """The grey of frame `index`'s top band: which frame is shown, read back from its pixels."""
    return 20 + 5 * index


@pytest.fixture
def clip(tmp_path):
    """A small MJPG video whose frames say their index in their top band, with a moving dot."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot write MJPG video")
    for i in range(FRAMES):
        frame = np.full((H, W, 3), 60, np.uint8)
        frame[:8] = shade(i)
        cv2.circle(frame, (8 + i, 30), 4, (255, 255, 255), -1)
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny model for the demo skeleton (untrained: any weights show the plumbing)."""
    from kpstudio.core.demo import demo_skeleton
    from kpstudio.ml.model_file import save_model_file
    from kpstudio.ml.models import build_model

    skeleton = demo_skeleton()
    path = tmp_path_factory.mktemp("model") / "model.kpmodel"
    model = build_model("default", len(skeleton.keypoints), 64, **TINY_PARAMS)
    return save_model_file(path, model, arch="default", params=TINY_PARAMS, input_size=64,
                           skeleton=skeleton)  # fmt: skip


@pytest.fixture
def with_model(window, model_file):
    """The studio window, its demo project holding run r1 with the tiny model."""
    target = run_folder(window.doc.project.folder, "r1") / "model.kpmodel"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(model_file, target)
    record_run(window.doc.project, "r1", "default", "finished", {}, model_path=target)
    return window


def open_player(qtbot, window, clip) -> VideoPlayer:
    player = open_video_player(window, clip)
    qtbot.waitUntil(lambda: player.current == 0, timeout=10_000)
    player.runtime = "tensorflow"  # onnx conversion of the model would only add seconds
    return player


def shown_index(player: VideoPlayer) -> int:
    """The frame on screen, read from its pixels (not from the player's own bookkeeping)."""
    image = player.view._array
    return round((float(image[:8].mean()) - 20) / 5)


def seek_and_wait(qtbot, player, index):
    with qtbot.waitSignal(player.frame_shown, timeout=10_000,
                          check_params_cb=lambda i: i == index):  # fmt: skip
        player.seek(index)


def test_scrubbing_stepping_and_the_strip_show_the_frame_asked_for(qtbot, window, clip):
    player = open_player(qtbot, window, clip)
    assert player.isVisible() and player.frames == FRAMES and shown_index(player) == 0
    assert "No trained run" in player.model_label.text() and player.drawn == []
    with qtbot.waitSignal(player.frame_shown, timeout=10_000):
        player.transport.timeline.setValue(17)  # the user drags the slider
    qtbot.waitUntil(lambda: player.current == 17)
    assert shown_index(player) == 17
    player.step(1)
    qtbot.waitUntil(lambda: player.current == 18)
    player.step(-3)
    qtbot.waitUntil(lambda: player.current == 15)
    assert shown_index(player) == 15 and player.transport.timeline.value() == 15
    seek_and_wait(qtbot, player, FRAMES - 1)  # a seek past the end stops at the last frame
    player.seek(FRAMES + 100)
    qtbot.wait(100)
    assert player.current == FRAMES - 1 and shown_index(player) == FRAMES - 1
    # A click on the confidence strip jumps to the frame under it.
    box = player.strip.getPlotItem().getViewBox()
    scene = box.mapViewToScene(QPointF(30, 0.5))
    at = player.strip.mapFromScene(scene)
    assert player.strip.frame_at(scene) == 30
    with qtbot.waitSignal(player.frame_shown, timeout=10_000):
        qtbot.mouseClick(player.strip.viewport(), Qt.MouseButton.LeftButton, pos=at)
    qtbot.waitUntil(lambda: player.current == 30)
    assert shown_index(player) == 30
    assert abs(player.strip.cursor.value() - 30) < 1e-9


def test_playback_runs_through_to_the_last_frame(qtbot, window, clip):
    player = open_player(qtbot, window, clip)
    player.play()
    assert player.transport.play_button.text() == "Pause"
    qtbot.waitUntil(lambda: player.current == FRAMES - 1, timeout=20_000)  # 4 s of video
    qtbot.waitUntil(lambda: player.transport.play_button.text() == "Play")
    assert shown_index(player) == FRAMES - 1


def test_the_active_models_prediction_is_drawn_on_the_frame_shown(qtbot, with_model, clip):
    player = open_player(qtbot, with_model, clip)
    qtbot.waitUntil(lambda: player.predictor is not None, timeout=WAIT_MS)
    seek_and_wait(qtbot, player, 9)
    qtbot.waitUntil(lambda: len(player.drawn) == 1, timeout=WAIT_MS)
    assert player.model_label.text() == "predictions of run r1"
    frame = player.view._array
    assert shown_index(player) == 9
    (expected,) = player.predictor.predict_arrays([frame])  # the frame on screen, predicted
    (drawn,) = player.drawn
    np.testing.assert_allclose(drawn.xy, expected.xy, atol=1e-4)
    keypoints = with_model.doc.skeleton.keypoints
    finite = [k for k, (x, y) in zip(keypoints, expected.xy) if np.isfinite(x) and np.isfinite(y)]
    assert [m.keypoint for m in player.view.markers] == finite  # one diamond per keypoint
    for m in player.view.markers:
        k = keypoints.index(m.keypoint)
        assert (m.x, m.y) == pytest.approx(tuple(expected.xy[k]))


def _cancel_button(task) -> QPushButton:
    return task.dialog.findChild(QPushButton)


def test_predicting_the_whole_video_cancel_keeps_what_is_done_and_resume_finishes(
    qtbot, with_model, clip
):
    player = open_player(qtbot, with_model, clip)
    player.predict_whole_video()
    task = player.analysis
    assert task is not None and not player.predict_button.isEnabled()
    # The studio stays usable: the progress dialog blocks no window.
    assert task.dialog.windowModality() == Qt.WindowModality.NonModal
    assert QApplication.activeModalWidget() is None
    _cancel_button(task).click()  # Cancel, as the user would: before the first batch is done
    qtbot.waitUntil(lambda: player.analysis is None, timeout=WAIT_MS)
    assert player.stored is not None and 0 < player.stored.frames < FRAMES
    done = player.stored.frames
    assert player.predict_button.text() == f"Go on predicting (from frame {done})"
    assert f"stopped before frame {done}" in player.message.text()
    strip = player.strip.confidence()
    assert len(strip) == done and np.isfinite(strip).all()

    player.predict_whole_video()  # goes on from frame `done`
    qtbot.waitUntil(lambda: player.analysis is None, timeout=WAIT_MS)
    stored = player.stored
    assert stored.frames == FRAMES and player.predict_button.text() == "Predict whole video"
    # Resumed frames equal an uninterrupted run's: predicting frame 0..FRAMES-1 of the video.
    picked = (0, done, FRAMES - 1)
    expected = player.predictor.predict_arrays([read_frame(clip, i) for i in picked])
    for i, pred in zip(picked, expected):
        np.testing.assert_allclose(stored.at(i)[0].xy, pred.xy, atol=0.5)
    np.testing.assert_allclose(player.strip.confidence(), stored.mean_confidence())
    # A frame shown now draws the stored answer, with no model run for it.
    seek_and_wait(qtbot, player, 33)
    np.testing.assert_array_equal(player.drawn[0].xy, stored.at(33)[0].xy)


def read_frame(path, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    for _ in range(index):
        cap.grab()
    ok, bgr = cap.read()
    cap.release()
    assert ok
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_adding_a_frame_writes_it_into_the_project_with_its_prediction(qtbot, with_model, clip):
    window = with_model
    doc = window.doc
    player = open_player(qtbot, window, clip)
    player.predict_whole_video()
    qtbot.waitUntil(lambda: player.analysis is None, timeout=WAIT_MS)
    assert player.stored.frames == FRAMES
    seek_and_wait(qtbot, player, 12)
    before = {r.id for r in doc.images()}
    with qtbot.waitSignal(doc.images_changed, timeout=WAIT_MS):
        player.add_frame()
    added = [r for r in doc.images() if r.id not in before]
    assert len(added) == 1
    record = added[0]
    assert record.path == "frames/clip/clip_000012.png"  # as File → Add video frames names it
    assert (record.width, record.height) == (W, H)
    pixels = read_image(doc.project.image_path(record))
    assert abs(float(pixels[:8].mean()) - shade(12)) < 3
    stored = load_prediction(doc.project, record.id, "r1")
    assert stored is not None
    np.testing.assert_allclose(stored[0], player.stored.at(12)[0].xy, atol=1e-3)
    assert record.status == "predicted"  # ready to correct
    assert "added frame 12" in player.message.text()
    # Adding it again adds nothing.
    player.add_frame()
    qtbot.wait(200)
    assert len(doc.images()) == len(before) + 1
    assert "already in the project" in player.message.text()


def test_a_frame_added_without_a_model_is_an_image_to_label(qtbot, window, clip):
    doc = window.doc
    player = open_player(qtbot, window, clip)
    seek_and_wait(qtbot, player, 5)
    with qtbot.waitSignal(doc.images_changed, timeout=10_000):
        player.add_frame()
    record = doc.images()[-1]
    assert record.path == "frames/clip/clip_000005.png" and record.status == "unlabeled"
    assert load_prediction(doc.project, record.id) is None


def test_the_video_menu_opens_the_player(qtbot, window, clip, monkeypatch):
    from kpstudio.gui import video_player

    monkeypatch.setattr(video_player.QFileDialog, "getOpenFileName",
                        staticmethod(lambda *args, **kwargs: (str(clip), "")))  # fmt: skip
    window.actions_by_name["video_player"].trigger()
    player = window.findChild(VideoPlayer)
    assert player is not None
    qtbot.waitUntil(lambda: player.current == 0, timeout=10_000)
    assert player.isVisible() and "clip.avi" in player.windowTitle()
    window.actions_by_name["video_player"].trigger()  # a second video: the same window
    assert window.findChildren(VideoPlayer) == [player]


def test_closing_the_project_closes_the_player_and_its_decoding_thread(qtbot, window, clip):
    player = open_player(qtbot, window, clip)
    thread = player.source._thread
    window.close_project()
    assert not player.isVisible() and player.source is None and not thread.is_alive()


def test_the_player_loads_no_tensorflow_until_a_model_is_used():
    import subprocess
    import sys

    from conftest import REPO

    code = ("import sys, kpstudio.gui.video_player, kpstudio.gui.video_player_jobs; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)  # fmt: skip
    assert out.stdout.strip() == "[]"
