"""The player's confidence-over-time strip: the model's mean confidence on every frame, a line at
the frame shown, and a click anywhere on it jumps there. Dips are where the model is unsure: the
frames worth looking at, and adding to the project to label."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QWidget

STRIP_HEIGHT_PX = 90
_CURVE = "#3a7bd5"
_CURSOR = "#d62728"


class ConfidenceStrip(pg.PlotWidget):
    frame_clicked = Signal(int)  # the frame under a click on the strip

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, background="w")
        self.setFixedHeight(STRIP_HEIGHT_PX)
        self.setMouseEnabled(x=False, y=False)  # a click jumps; dragging would only pan away
        self.hideButtons()
        self.setMenuEnabled(False)
        self.setYRange(0.0, 1.0, padding=0.05)
        self.setLabel("left", "conf.")
        self.getAxis("bottom").enableAutoSIPrefix(False)  # frame 2000, not 2 (×1000)
        self.showGrid(x=False, y=True, alpha=0.3)
        # connect="finite": frames not predicted yet (NaN) leave a gap, not a drop to zero.
        self.curve = self.plot([], [], pen=pg.mkPen(_CURVE, width=1), connect="finite")
        self.cursor = pg.InfiniteLine(0, angle=90, pen=pg.mkPen(_CURSOR, width=1.5))
        self.addItem(self.cursor)
        self._frames = 1
        self.scene().sigMouseClicked.connect(self._on_scene_mouse_clicked)

    def set_length(self, frames: int) -> None:
        """A video of `frames` frames: the x axis spans all of them, whatever is predicted."""
        self._frames = max(1, int(frames))
        self.setXRange(0, self._frames - 1, padding=0.01)

    def set_confidence(self, confidence: np.ndarray | None) -> None:
        """(T,) mean confidence per frame from frame 0 (NaN: not predicted); None clears."""
        if confidence is None or not len(confidence):
            self.curve.setData([], [])
            return
        y = np.asarray(confidence, np.float64)
        self.curve.setData(np.arange(len(y), dtype=np.float64), y)
        self.setXRange(0, max(self._frames, len(y)) - 1, padding=0.01)

    def confidence(self) -> np.ndarray:
        """The values plotted (what the user sees), for tests and tooltips."""
        _, y = self.curve.getData()
        return np.zeros(0) if y is None else np.asarray(y)

    def set_current(self, index: int) -> None:
        self.cursor.setValue(index)

    def frame_at(self, scene_pos) -> int | None:
        """The frame under a point of the scene, or None outside the plot."""
        box = self.getPlotItem().getViewBox()
        if not box.sceneBoundingRect().contains(scene_pos):
            return None
        x = box.mapSceneToView(scene_pos).x()
        return int(min(max(round(x), 0), self._frames - 1))

    @Slot(object)
    def _on_scene_mouse_clicked(self, event) -> None:
        index = self.frame_at(event.scenePos())
        if index is not None:
            event.accept()
            self.frame_clicked.emit(index)
