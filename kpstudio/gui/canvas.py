"""The image canvas: one image, its keypoints and predictions; clicks, drags, zoom and pan.

Zoom, pan and the image-to-screen geometry come from kpstudio.gui.image_view (scene
coordinates are image pixel coordinates, origin at the top-left pixel's corner). The canvas
never changes labels; it reports gestures through signals, the labeling controller turns them
into Document edits, then hands the new labels back with `show_labels` (one redraw). A drag
moves its marker here live; only the release is written.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from PySide6 import QtGui
from PySide6.QtCore import QEvent, QPointF, Qt, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QGraphicsItem, QWidget

from kpstudio.gui.canvas_items import Marker, overlay_items
from kpstudio.gui.image_view import PIXEL_CENTRE, ImageView
from kpstudio.gui.loupe import Loupe

__all__ = ["ImageCanvas", "Marker"]  # Marker is re-exported: callers import it from here

HIT_RADIUS_PX = 8.0
CLICK_SLOP_PX = 4.0  # a press that travels further is a pan, so panning never places a point
DRAG_START_PX = 2.0  # hand tremor while clicking a marker to select it must not move it


class ImageCanvas(ImageView):
    """Shows an image with keypoint markers; zoom around the cursor, pan, click, drag."""

    clicked_empty = Signal(float, float)  # a click on the image away from markers: place here
    marker_clicked = Signal(int, str)  # (instance, keypoint) pressed: select it
    marker_right_clicked = Signal(int, str)  # (instance, keypoint): e.g. cycle its visibility
    marker_dragged = Signal(int, str, float, float, bool)  # (..., x, y, finished)
    cursor_moved = Signal(float, float)  # image point under the mouse; NaN, NaN off the image
    # A suggestion (a predicted keypoint) clicked or dragged: (instance, keypoint, x, y) where
    # it was dropped, to become a label there.
    suggestion_dropped = Signal(int, str, float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.viewport().setMouseTracking(True)
        self._loupe = Loupe(self.viewport())
        self._markers: list[Marker] = []
        self._edges: list[tuple[str, str]] = []
        self._colors: dict[str, str] = {}
        self._predictions: list[tuple[Marker, float | None]] = []
        self._selected: tuple[int, str] | None = None
        self._warnings: dict[tuple[int, str], str] = {}
        self._placing: str | None = None
        self._overlay: list[QGraphicsItem] = []
        self._space_held = False
        self._hover_pos: QPointF | None = None
        self._mode: str | None = None  # None, "press", "pan" or "marker": the gesture in progress
        self._button = Qt.MouseButton.NoButton
        self._press_pos = self._last_pos = QPointF()
        self._drag_key: tuple[int, str] | None = None
        self._grab_offset = QPointF()
        self._dragging = False

    # -- content ---------------------------------------------------------------------------
    def set_image(self, image: np.ndarray | None) -> None:
        """Show an HxWx3 uint8 RGB image (None clears); the loupe magnifies the same pixels."""
        super().set_image(image)
        self._loupe.set_image(self._qimage)
        if image is None:
            self._loupe.hide()

    def set_markers(self, markers: list[Marker], edges: list[tuple[str, str]],
                    colors: dict[str, str]) -> None:  # fmt: skip
        """Labelled keypoints, skeleton edges (drawn within each instance), keypoint colours."""
        self._markers, self._edges, self._colors = list(markers), list(edges), dict(colors)
        self._rebuild_overlay()

    def show_labels(self, markers: list[Marker], edges: list[tuple[str, str]],
                    colors: dict[str, str], selected: tuple[int, str] | None,
                    warnings: dict[tuple[int, str], str]) -> None:  # fmt: skip
        """Everything about the labels at once (markers, edges, colours, selection, hints):
        one redraw for one edit, where the separate setters would redraw three times."""
        self._markers, self._edges, self._colors = list(markers), list(edges), dict(colors)
        self._selected, self._warnings = selected, dict(warnings)
        self._rebuild_overlay()

    def set_predictions(self, markers: list[Marker],
                        confidences: list[float] | None = None) -> None:  # fmt: skip
        """Predicted keypoints, drawn as hollow diamonds; fainter when less confident."""
        confs = list(confidences) if confidences is not None else [None] * len(markers)
        self._predictions = list(zip(markers, confs))
        self._rebuild_overlay()

    def has_predictions(self) -> bool:
        return bool(self._predictions)

    def set_selected(self, instance: int | None, keypoint: str | None) -> None:
        self._selected = None if instance is None or keypoint is None else (instance, keypoint)
        self._rebuild_overlay()

    def set_warnings(self, warnings: dict[tuple[int, str], str]) -> None:
        """Markers to flag, with the message their tooltip shows."""
        self._warnings = dict(warnings)
        self._rebuild_overlay()

    def set_placing(self, keypoint: str | None, color: str | None) -> None:
        """The keypoint a click will place (crosshair cursor and loupe), or None."""
        self._placing = keypoint
        self._loupe.set_color(color)
        pos = self._hover_pos
        if pos is None:
            self._loupe.hide()
        else:
            self._update_loupe(pos, self._image_at(pos))
            self._update_cursor(pos)

    def _rebuild_overlay(self) -> None:
        # Markers are few (tens), so redrawing them all is simpler than patching items, and
        # graphics items never become a second copy of the labels.
        for item in self._overlay:
            self.scene().removeItem(item)
        self._overlay = overlay_items(
            self._markers,
            self._edges,
            self._colors,
            self._predictions,
            self._selected,
            self._warnings,
        )
        for item in self._overlay:
            self.scene().addItem(item)

    # -- mouse -----------------------------------------------------------------------------
    def _marker_at(self, pos: QPointF, markers=None) -> Marker | None:
        """The marker within HIT_RADIUS_PX screen pixels of `pos`, nearest (topmost on ties)."""
        t, p = self.viewportTransform(), pos + PIXEL_CENTRE
        best, best_d = None, HIT_RADIUS_PX
        for m in self._markers if markers is None else markers:
            v = t.map(QPointF(m.x, m.y))
            d = math.hypot(v.x() - p.x(), v.y() - p.y())
            if d <= best_d:
                best, best_d = m, d
        return best

    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:
        if self._mode is not None:  # a second button during a gesture changes nothing
            event.accept()
            return
        pos, button = event.position(), event.button()
        left = button == Qt.MouseButton.LeftButton
        hit = self._marker_at(pos) if not self._space_held else None
        # Labels win over suggestions under the cursor: a suggestion is grabbed only where no
        # label is.
        suggestion = None
        if left and hit is None and not self._space_held and self._predictions:
            suggestion = self._marker_at(pos, [m for m, _ in self._predictions])
        self._press_pos = self._last_pos = pos
        self._button = button
        if button == Qt.MouseButton.MiddleButton or (left and self._space_held):
            self._mode = "pan"
        elif suggestion is not None:
            self._mode, self._dragging = "suggestion", False
            self._drag_key = (suggestion.instance, suggestion.keypoint)
            self._grab_offset = QPointF(suggestion.x, suggestion.y) - self._image_at(pos)
        elif left and hit is not None:
            self._mode, self._dragging = "marker", False
            self._drag_key = (hit.instance, hit.keypoint)
            # Drag by the grab point so the marker does not jump to the cursor on press.
            self._grab_offset = QPointF(hit.x, hit.y) - self._image_at(pos)
            self.marker_clicked.emit(hit.instance, hit.keypoint)
        elif left:
            self._mode = "press"
        elif button == Qt.MouseButton.RightButton and hit is not None:
            self.marker_right_clicked.emit(hit.instance, hit.keypoint)
        else:
            super().mousePressEvent(event)
            return
        self._update_cursor(pos)
        event.accept()

    def mouseDoubleClickEvent(self, event: QtGui.QMouseEvent) -> None:
        # Fast labelling clicks arrive as double-clicks: each must still place or select.
        self.mousePressEvent(event)

    def mouseMoveEvent(self, event: QtGui.QMouseEvent) -> None:
        pos = event.position()
        self._hover_pos = pos
        point = self._image_at(pos)
        if self._inside(point):
            self.cursor_moved.emit(point.x(), point.y())
        else:
            self.cursor_moved.emit(math.nan, math.nan)
        moved = self._travel(pos)
        if self._mode == "press" and moved >= CLICK_SLOP_PX:
            self._mode = "pan"  # dragging the bare image moves it, like a hand tool
        if self._mode == "pan":
            delta = pos - self._last_pos
            self._scroll(-delta.x(), -delta.y())
            self._last_pos, self._fitted = pos, False
        elif self._mode == "marker" and (self._dragging or moved >= DRAG_START_PX):
            self._dragging = True
            self._drag_to(point, finished=False)
        elif self._mode == "suggestion" and (self._dragging or moved >= DRAG_START_PX):
            self._dragging = True
            self._move_suggestion(self._clamp(point + self._grab_offset))
        self._update_loupe(pos, point)
        self._update_cursor(pos)
        event.accept()

    def mouseReleaseEvent(self, event: QtGui.QMouseEvent) -> None:
        if self._mode is None or event.button() != self._button:
            if self._mode is None:
                super().mouseReleaseEvent(event)
            return
        pos = event.position()
        mode, self._mode = self._mode, None
        moved = self._travel(pos)
        if mode == "press" and moved < CLICK_SLOP_PX:
            point = self._image_at(self._press_pos)  # where the user aimed, before any tremor
            if self._inside(point):
                self.clicked_empty.emit(point.x(), point.y())
        elif mode == "marker" and (self._dragging or moved >= DRAG_START_PX):
            self._drag_to(self._image_at(pos), finished=True)
        elif mode == "suggestion":  # a click takes it where it is, a drag where it is dropped
            moved_far = self._dragging or moved >= DRAG_START_PX
            target = self._clamp((self._image_at(pos) if moved_far else self._image_at(
                self._press_pos)) + self._grab_offset)  # fmt: skip
            instance, keypoint = self._drag_key
            self.suggestion_dropped.emit(instance, keypoint, target.x(), target.y())
        self._dragging, self._drag_key = False, None
        self._update_loupe(pos, self._image_at(pos))
        self._update_cursor(pos)
        event.accept()

    def _travel(self, pos: QPointF) -> float:
        d = pos - self._press_pos
        return math.hypot(d.x(), d.y())

    def _drag_to(self, point: QPointF, finished: bool) -> None:
        target = self._clamp(point + self._grab_offset)
        instance, keypoint = self._drag_key
        # Move our drawing now; the label is written only when the drag finishes (and then
        # redrawn from the Document, so a release where the last move left off draws once).
        moved = [replace(m, x=target.x(), y=target.y())
                 if (m.instance, m.keypoint) == self._drag_key else m
                 for m in self._markers]  # fmt: skip
        if moved != self._markers:
            self._markers = moved
            self._rebuild_overlay()
        self.marker_dragged.emit(instance, keypoint, target.x(), target.y(), finished)

    def _move_suggestion(self, target: QPointF) -> None:
        self._predictions = [(replace(m, x=target.x(), y=target.y()), c)
                             if (m.instance, m.keypoint) == self._drag_key else (m, c)
                             for m, c in self._predictions]  # fmt: skip
        self._rebuild_overlay()

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Leave:
            self._hover_pos = None
            self._loupe.hide()
            self.cursor_moved.emit(math.nan, math.nan)
        return super().viewportEvent(event)

    def _update_loupe(self, pos: QPointF, point: QPointF) -> None:
        # Shown while placing (over the image) and while dragging a marker, centred on the
        # point that would be written.
        dragging = self._mode == "marker" and self._dragging
        placing = self._placing is not None and self._mode in (None, "press")
        if self._size is None or not (dragging or (placing and self._inside(point))):
            self._loupe.hide()
            return
        if dragging:
            self._loupe.set_color(self._colors.get(self._drag_key[1]))
            point = self._clamp(point + self._grab_offset)
        self._loupe.set_factor(min(max(4.0, 2 * self.zoom()), 32.0))
        self._loupe.set_centre(point.x(), point.y())
        self._loupe.show_beside(pos, self.viewport().size())

    def _update_cursor(self, pos: QPointF) -> None:
        shapes = Qt.CursorShape
        if self._mode == "pan" or (self._mode == "marker" and self._dragging):
            shape = shapes.ClosedHandCursor
        elif self._space_held:
            shape = shapes.OpenHandCursor
        elif self._mode == "marker" or self._marker_at(pos) is not None:
            shape = shapes.PointingHandCursor
        elif self._placing is not None:
            shape = shapes.CrossCursor
        else:
            shape = shapes.ArrowCursor
        self.viewport().setCursor(shape)

    # -- keyboard: the main window owns every key except the space pan --------------------
    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        # Not QGraphicsView's handler: it scrolls on arrows, which the main window uses to
        # nudge the selected point. Ignored events go on to the parent widgets.
        self._on_key(event, held=True)

    def keyReleaseEvent(self, event: QtGui.QKeyEvent) -> None:
        self._on_key(event, held=False)

    def _on_key(self, event: QtGui.QKeyEvent, held: bool) -> None:
        if event.key() != Qt.Key.Key_Space or event.modifiers():
            event.ignore()
            return
        if not event.isAutoRepeat():
            self._space_held = held
            if self._hover_pos is not None:
                self._update_cursor(self._hover_pos)
        event.accept()

    def focusOutEvent(self, event: QtGui.QFocusEvent) -> None:
        self._space_held = False  # the release may go to another window
        super().focusOutEvent(event)
