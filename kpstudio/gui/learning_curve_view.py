"""The Review dock's assisted-labeling part: the labeling speed line and the learning curve
(val error against labeled images, the fitted power law, and how many more labels reach the
target). The figures come from kpstudio.core.labeling_log and kpstudio.core.learning_curve."""

from __future__ import annotations

import sqlite3

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from kpstudio.core.labeling_log import labeling_speed
from kpstudio.core.learning_curve import forecast, project_points

TARGET_PX = 3.0
# The speed line follows the edits, but re-reading it once per click would be waste: it is
# re-read this long after the last edit.
SPEED_DELAY_MS = 1500


class LearningCurveView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._doc = None
        self.speed = QLabel("")
        self.speed.setWordWrap(True)
        self.forecast = QLabel("")
        self.forecast.setWordWrap(True)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumHeight(140)
        self.plot.setLabel("left", "val mean px")
        self.plot.setLabel("bottom", "labeled images")
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.points = pg.ScatterPlotItem(size=7, brush="#d62728", pen=None)
        self.fit_line = pg.PlotDataItem([], [], pen=pg.mkPen("#555555", width=2))
        dashed = pg.mkPen("#2ca02c", style=Qt.PenStyle.DashLine)
        self.target_line = pg.InfiniteLine(TARGET_PX, angle=0, pen=dashed)
        self.plot.addItem(self.points)
        self.plot.addItem(self.fit_line)
        self.plot.addItem(self.target_line)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SPEED_DELAY_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.speed)
        layout.addWidget(QLabel("Learning curve (val error against labels)"))
        layout.addWidget(self.plot)
        layout.addWidget(self.forecast)

    def refresh(self, doc) -> None:
        """Re-read the speed and the curve of `doc` (a Document, or None)."""
        if doc is not self._doc:
            if doc is not None:  # a Document's signals die with it: no disconnect needed
                doc.labels_changed.connect(self._on_doc_labels_changed)
            self._doc = doc
        if doc is None:
            self.speed.setText("")
            self.forecast.setText("")
            self.points.setData([], [])
            self.fit_line.setData([], [])
            return
        self.show_speed()
        points = project_points(doc.project)
        fc = forecast(points, TARGET_PX, doc.project.counts()["labeled_images"])
        self.points.setData([n for n, _ in points], [e for _, e in points])
        if fc.law is not None:
            top = max(n for n, _ in points)
            if fc.labels_needed is not None:
                top = max(top, min(fc.labels_needed, 10 * top))
            xs = np.linspace(min(n for n, _ in points), top, 60)
            self.fit_line.setData(xs, fc.law(xs))
        else:
            self.fit_line.setData([], [])
        self.forecast.setText(fc.sentence())

    def show_speed(self) -> None:
        if self._doc is not None:
            self.speed.setText(labeling_speed(self._doc.project).sentence())

    def curve_points(self) -> int:
        return len(self.points.data)

    @Slot(int)
    def _on_doc_labels_changed(self, image_id: int) -> None:
        self._timer.start()

    @Slot()
    def _on_timer_timeout(self) -> None:
        try:
            self.show_speed()
        except (sqlite3.Error, ValueError):  # the project closed meanwhile: nothing to show
            self.speed.setText("")
