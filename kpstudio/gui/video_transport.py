"""The player's transport bar: step back, play/pause, step on, the timeline, where we are, and
the playback clock.

It only says what the user (or the clock) asks for; the player decides what is shown. The
clock, not a count of timer ticks, says which frame is due, so frames that decode (and predict)
slower than the video's rate are skipped and playback keeps real time.
"""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import QElapsedTimer, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QWidget


class VideoTransport(QWidget):
    seek_requested = Signal(int)  # the user chose a frame on the timeline
    step_requested = Signal(int)  # frames to step (the step buttons)
    play_toggled = Signal()  # the play / pause button
    frame_due = Signal(int)  # playing: the frame the clock says is due now

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.frames, self.fps = 0, 30.0
        self._anchor = self._due = 0  # the frame at the clock's start; the last one due
        self._clock = QElapsedTimer()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._on_timer_timeout)
        self.timeline = QSlider(Qt.Orientation.Horizontal)
        self.timeline.valueChanged.connect(self._on_timeline_value_changed)
        self.position = QLabel()
        self.position.setMinimumWidth(170)
        self.back_button = QPushButton("◀︎ Step")
        self.play_button = QPushButton("Play")
        self.forward_button = QPushButton("Step ▶︎")
        self.back_button.clicked.connect(partial(self.step_requested.emit, -1))
        self.forward_button.clicked.connect(partial(self.step_requested.emit, 1))
        self.play_button.clicked.connect(self.play_toggled.emit)
        self.play_button.setToolTip("Play or pause (Space)")
        self.back_button.setToolTip("Previous frame (Left; PgUp: a second back)")
        self.forward_button.setToolTip("Next frame (Right; PgDown: a second on)")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.back_button, self.play_button, self.forward_button):
            layout.addWidget(widget)
        layout.addWidget(self.timeline, 1)
        layout.addWidget(self.position)

    def set_video(self, frames: int, fps: float) -> None:
        """A video of `frames` frames (0 … frames - 1) at `fps`."""
        self.frames, self.fps = max(0, frames), fps
        self.timeline.blockSignals(True)
        self.timeline.setRange(0, max(0, frames - 1))
        self.timeline.blockSignals(False)

    def show_frame(self, index: int) -> None:
        """Frame `index` is on screen: the slider and the position follow (no seek back)."""
        self.timeline.blockSignals(True)
        self.timeline.setValue(index)
        self.timeline.blockSignals(False)
        seconds = index / self.fps
        self.position.setText(f"frame {index} / {self.frames - 1}   "
                              f"{int(seconds // 60)}:{seconds % 60:05.2f}")  # fmt: skip

    # -- the clock ------------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    def start_clock(self, index: int) -> None:
        """Play from frame `index` on."""
        self._anchor = self._due = index
        self._clock.start()
        self._timer.start(max(5, int(1000 / self.fps)))
        self.play_button.setText("Pause")

    def restart_clock(self, index: int) -> None:
        """The user moved to `index` while playing: go on from there."""
        if self.playing:
            self._anchor = self._due = index
            self._clock.restart()

    def stop_clock(self) -> None:
        self._timer.stop()
        self.play_button.setText("Play")

    @Slot()
    def _on_timer_timeout(self) -> None:
        due = self._anchor + int(self._clock.elapsed() * self.fps / 1000.0)
        last = self.frames - 1
        if due >= last:
            self.stop_clock()
            due = last
        if due != self._due:
            self._due = due
            self.frame_due.emit(due)

    @Slot(int)
    def _on_timeline_value_changed(self, value: int) -> None:
        self.seek_requested.emit(value)
