"""Python's cyclic garbage collection, in the GUI thread only.

CPython collects in whichever thread happens to allocate past the threshold. When that is a
worker (a training thread allocates a lot) and the garbage holds Qt objects (the widgets of a
closed window or dialog), their C++ destructors run in the worker: a training thread deadlocked
that way in QObject::~QObject, waiting for the GIL, while saving its model (seen in
tests/gui/studio_training). So while the studio runs, automatic collection is off and a timer in
the GUI thread collects instead (the pattern of pyqtgraph.util.garbage_collector). Each tick
makes at most one pass, so full passes (0.1-0.2 s once TensorFlow is loaded) stay about as rare
as under CPython's own thresholds. Objects without cycles are freed at once by reference
counting, whatever thread drops them.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer, Slot

TICK_MS = 1000


class GuiThreadCollector(QObject):
    """Created and started in the GUI thread; stop() collects once more and gives collection
    back to CPython."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._threshold = gc.get_threshold()

    def start(self) -> None:
        gc.disable()
        self._timer.start(TICK_MS)

    def stop(self) -> None:
        self._timer.stop()
        gc.collect()
        gc.enable()

    @Slot()
    def _on_timer_timeout(self) -> None:
        # The oldest generation whose count passed its threshold, as CPython would choose
        # (generation g's count is the number of passes of g - 1 since g was last collected).
        counts, generation = gc.get_count(), -1
        for g in range(3):
            if counts[g] <= self._threshold[g]:
                break
            generation = g
        if generation >= 0:
            gc.collect(generation)
