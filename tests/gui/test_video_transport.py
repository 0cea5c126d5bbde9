"""The transport bar: the slider asks for frames, showing a frame does not ask again, and the
clock makes frames due until the last one, then stops."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from kpstudio.gui.video_transport import VideoTransport  # noqa: E402


def test_the_slider_asks_and_showing_a_frame_does_not(qtbot):
    bar = VideoTransport()
    qtbot.addWidget(bar)
    bar.set_video(100, 25.0)
    asked = []
    bar.seek_requested.connect(asked.append)
    bar.show_frame(50)
    assert asked == [] and bar.timeline.value() == 50
    assert bar.position.text().split() == ["frame", "50", "/", "99", "0:02.00"]
    bar.timeline.setValue(60)
    assert asked == [60]


def test_the_clock_makes_frames_due_until_the_last(qtbot):
    bar = VideoTransport()
    qtbot.addWidget(bar)
    bar.set_video(12, 100.0)
    due = []
    bar.frame_due.connect(due.append)
    bar.start_clock(3)
    assert bar.playing and bar.play_button.text() == "Pause"
    qtbot.waitUntil(lambda: not bar.playing, timeout=5000)
    assert due[-1] == 11 and due == sorted(set(due)) and due[0] > 3
    assert bar.play_button.text() == "Play"
