"""A UI-thread timer that measures how late the event loop runs it: the latency a user feels."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QElapsedTimer, Qt, QTimer

PERIOD_MS = 5


class LatencyProbe:
    """Start it, keep the event loop busy with what is measured, stop it, read `late_ms`."""

    def __init__(self) -> None:
        self._late: list[float] = []
        self._clock = QElapsedTimer()
        self._expected = float(PERIOD_MS)
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._clock.start()
        self._expected = float(PERIOD_MS)
        self._timer.start(PERIOD_MS)

    def stop(self) -> np.ndarray:
        self._timer.stop()
        return self.late_ms

    @property
    def late_ms(self) -> np.ndarray:
        return np.array(self._late[5:])  # the first ticks include the timer's own start

    def _tick(self) -> None:
        now = self._clock.nsecsElapsed() / 1e6
        self._late.append(max(0.0, now - self._expected))
        self._expected = now + PERIOD_MS
