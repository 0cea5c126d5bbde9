"""The player's picture: one video frame with the model's keypoints and skeleton over it.

An ImageView (zoom around the cursor, frames of one size keep the zoom) with no labeling
gestures: nothing here is edited. Keypoints are drawn with the labeling canvas's prediction
style (kpstudio.gui.canvas_items: hollow diamonds, fainter when less confident); the skeleton's
edges are drawn between an instance's predicted keypoints, every instance alike.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsLineItem, QWidget

from kpstudio.core.prediction_files import Prediction
from kpstudio.core.skeleton import Skeleton
from kpstudio.gui.canvas_items import Marker, keypoint_color, overlay_items
from kpstudio.gui.image_view import ImageView

_Z_EDGE = 1  # under the markers (canvas_items puts predictions at 2)


class VideoFrameView(ImageView):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        # The whole frame fits; scroll bars would only take room from it (the wheel still zooms).
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._items: list[QGraphicsItem] = []
        self.markers: list[Marker] = []  # the keypoints drawn now (instance, name, x, y)

    def show_predictions(self, predictions: list[Prediction], skeleton: Skeleton | None) -> None:
        """Draw every instance of `predictions` (keypoints in `skeleton`'s order); replaces
        what was drawn. An empty list or no skeleton clears."""
        for item in self._items:
            self.scene().removeItem(item)
        self._items, self.markers = [], []
        if skeleton is None or not predictions:
            return
        names = skeleton.keypoints
        colors = dict(zip(names, skeleton.colors))
        drawn: list[tuple[Marker, float | None]] = []
        for pred in predictions:
            at: dict[str, tuple[float, float, float]] = {}
            for name, (x, y), c in zip(names, pred.xy, pred.confidence):
                if np.isfinite(x) and np.isfinite(y):
                    conf = float(c) if np.isfinite(c) else None
                    drawn.append((Marker(pred.instance, name, float(x), float(y), 2), conf))
                    at[name] = (float(x), float(y), 1.0 if conf is None else conf)
            for a, b in skeleton.edges:
                if a in at and b in at:
                    self._items.append(_edge(at[a], at[b], keypoint_color(colors, a)))
        self.markers = [m for m, _ in drawn]
        self._items += overlay_items([], [], colors, drawn, None, {})
        for item in self._items:
            self.scene().addItem(item)


def _edge(a: tuple[float, float, float], b: tuple[float, float, float], color) -> QGraphicsItem:
    """A bone between two predicted keypoints, as faint as the less confident end."""
    item = QGraphicsLineItem(a[0], a[1], b[0], b[1])
    color.setAlpha(200)
    pen = QPen(color, 1.5)
    pen.setCosmetic(True)  # the same width at every zoom
    item.setPen(pen)
    item.setZValue(_Z_EDGE)
    item.setOpacity(0.35 + 0.65 * min(max(min(a[2], b[2]), 0.0), 1.0))
    item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
    return item
