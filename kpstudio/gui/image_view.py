"""An image view that zooms around a point and pans: the geometry under the labeling canvas.

Scene coordinates are image coordinates: the pixmap sits at scene (0, 0) untransformed, so the
origin is the top-left corner of the top-left pixel and pixel i spans [i, i+1).
"""

from __future__ import annotations

import math

import numpy as np
from PySide6 import QtGui
from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QWidget

WHEEL_STEP = 1.2 ** (1 / 120)  # 1.2× per notch (120 units); touchpads send smaller steps
MAX_ZOOM = 64.0
FIT_BORDER_PX = 4.0
KEEP_VISIBLE_PX = 32.0  # panning may push the image aside, but never wholly out of view
PIXEL_CENTRE = QPointF(0.5, 0.5)  # a mouse position names a screen pixel; we mean its centre


class ImageView(QGraphicsView):
    """One RGB image; fit, 1:1, zoom around a point (the wheel zooms around the cursor)."""

    zoom_changed = Signal(float)  # view scale, 1.0 = one image pixel per screen pixel

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self._pixmap_item = QGraphicsPixmapItem()
        self._pixmap_item.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
        self.scene().addItem(self._pixmap_item)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        # We place the view ourselves after every zoom and resize (see _zoom_to).
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setBackgroundBrush(QColor(45, 45, 45))
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self._array: np.ndarray | None = None  # the QImage borrows this buffer
        self._qimage: QImage | None = None
        self._size: tuple[int, int] | None = None
        self._last_size: tuple[int, int] | None = None
        self._fitted = True  # follow window resizes until the user zooms or pans
        self._viewport_size = QSize()
        self._update_scene_rect()

    def set_image(self, image: np.ndarray | None) -> None:
        """Show an HxWx3 uint8 RGB image (None clears); a new image size fits the view."""
        if image is None:
            self._array = self._qimage = self._size = None
            self._pixmap_item.setPixmap(QPixmap())
            self._update_scene_rect()
            return
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.dtype} {image.shape}")
        image = np.ascontiguousarray(image)
        h, w = image.shape[:2]
        qimage = QImage(image.data, w, h, 3 * w, QImage.Format.Format_RGB888)
        self._array, self._qimage = image, qimage
        self._pixmap_item.setPixmap(QPixmap.fromImage(qimage))
        # Same size as the last image (video frames, a series): keep the zoom and place.
        refit = (w, h) != self._last_size
        self._size = self._last_size = (w, h)
        if refit:
            self.fit()
        else:
            self._update_scene_rect()

    def image_size(self) -> tuple[int, int] | None:
        """(width, height) of the image shown, or None."""
        return self._size

    # -- geometry and zoom -----------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        """Show the whole image, centred."""
        if self._size is None:
            return
        old = self.zoom()
        self._apply_scale(self._fit_scale())
        self.centerOn(self._size[0] / 2, self._size[1] / 2)
        self._fitted = True
        if self.zoom() != old:
            self.zoom_changed.emit(self.zoom())

    def zoom_1to1(self) -> None:
        """One image pixel per screen pixel, keeping the view centre in place."""
        self._zoom_to(1.0, None)

    def zoom_by(self, factor: float, anchor_view_pos: QPointF | None = None) -> None:
        """Scale by `factor`, keeping the image point at `anchor_view_pos` (viewport
        coordinates; default the viewport centre) where it is."""
        if factor > 0:
            self._zoom_to(self.zoom() * factor, anchor_view_pos)

    def view_pos_for(self, x: float, y: float) -> QPoint:
        """The viewport pixel showing image point (x, y)."""
        v = self.viewportTransform().map(QPointF(x, y))
        return QPoint(math.floor(v.x()), math.floor(v.y()))

    def _zoom_to(self, scale: float, anchor: QPointF | None) -> None:
        if self._size is None:
            return
        vp = self.viewport()
        anchor = QPointF(vp.width() / 2, vp.height() / 2) if anchor is None else QPointF(anchor)
        target = self._scene_at(anchor)
        old = self.zoom()
        self._apply_scale(min(max(scale, min(self._fit_scale(), 1.0) / 2), MAX_ZOOM))
        self._put(target, anchor)
        self._fitted = False
        if self.zoom() != old:
            self.zoom_changed.emit(self.zoom())

    def _fit_scale(self) -> float:
        w, h = self._size or (1, 1)
        vp = self.viewport()
        b = 2 * FIT_BORDER_PX
        return max(1e-3, min((vp.width() - b) / w, (vp.height() - b) / h))

    def _apply_scale(self, scale: float) -> None:
        self.setTransform(QTransform.fromScale(scale, scale))
        # Smooth when shrinking (no aliasing shimmer); sharp pixels when zoomed in to label.
        smooth = Qt.TransformationMode.SmoothTransformation
        fast = Qt.TransformationMode.FastTransformation
        self._pixmap_item.setTransformationMode(smooth if scale < 1 else fast)
        self._update_scene_rect()

    def _update_scene_rect(self) -> None:
        # A margin of nearly a viewport around the image lets any image point sit under any
        # screen point, so zooming around the cursor works at the edges and when zoomed out.
        if self._size is None:
            self.setSceneRect(QRectF(0, 0, 1, 1))
            return
        w, h = self._size
        vp, s = self.viewport(), self.zoom()
        mx = max(vp.width() - KEEP_VISIBLE_PX, 0.0) / s
        my = max(vp.height() - KEEP_VISIBLE_PX, 0.0) / s
        self.setSceneRect(QRectF(-mx, -my, w + 2 * mx, h + 2 * my))

    def _put(self, scene_point: QPointF, view_point: QPointF) -> None:
        """Scroll so that `scene_point` shows at `view_point` (to the nearest pixel)."""
        v = self.viewportTransform().map(scene_point)
        self._scroll(v.x() - view_point.x(), v.y() - view_point.y())

    def _scroll(self, dx: float, dy: float) -> None:
        for bar, d in ((self.horizontalScrollBar(), dx), (self.verticalScrollBar(), dy)):
            bar.setValue(bar.value() + round(d))

    def _scene_at(self, view_point: QPointF) -> QPointF:
        inverse, _ = self.viewportTransform().inverted()
        return inverse.map(view_point)

    def _image_at(self, event_pos: QPointF) -> QPointF:
        return self._scene_at(event_pos + PIXEL_CENTRE)

    def _inside(self, p: QPointF) -> bool:
        size = self._size
        return size is not None and 0 <= p.x() <= size[0] and 0 <= p.y() <= size[1]

    def _clamp(self, p: QPointF) -> QPointF:
        if self._size is None:
            return QPointF(p)
        w, h = self._size
        return QPointF(min(max(p.x(), 0.0), float(w)), min(max(p.y(), 0.0), float(h)))

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        old, new = self._viewport_size, self.viewport().size()
        keep_at = QPointF(old.width() / 2, old.height() / 2) if old.isValid() else QPointF()
        keep = self._scene_at(keep_at)
        super().resizeEvent(event)
        if new == old:
            return
        self._viewport_size = QSize(new)
        if self._fitted:
            self.fit()
        else:  # keep the image point at the centre where it is
            self._update_scene_rect()
            if old.isValid():
                self._put(keep, QPointF(new.width() / 2, new.height() / 2))

    def wheelEvent(self, event: QtGui.QWheelEvent) -> None:
        delta = event.angleDelta().y()
        if delta == 0 or self._size is None:
            event.ignore()
            return
        self.zoom_by(WHEEL_STEP**delta, event.position() + PIXEL_CENTRE)
        event.accept()
