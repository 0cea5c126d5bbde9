"""A small magnifier the canvas shows beside the cursor while a keypoint is being placed."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

DEFAULT_SIZE_PX = 120
DEFAULT_FACTOR = 4.0
OFFSET_PX = 24  # from the cursor to the loupe's nearest corner
_BACKGROUND = QColor(30, 30, 30)
_OUTLINE = QColor(0, 0, 0, 200)
_CROSSHAIR_GAP_PX = 4.0


class Loupe(QWidget):
    """Shows `factor`× the image around one image point, with a crosshair on that point.

    It paints straight from the canvas's QImage (no copy, no pixmap conversion), so following
    the cursor costs one 120×120 nearest-neighbour blit per mouse move.
    """

    def __init__(self, parent: QWidget | None = None, size: int = DEFAULT_SIZE_PX,
                 factor: float = DEFAULT_FACTOR) -> None:  # fmt: skip
        super().__init__(parent)
        self.setFixedSize(size, size)
        # It sits next to the cursor: a fast mouse can cross it, and the canvas must keep
        # receiving those events (a press there is still a click on the image).
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._image: QImage | None = None
        self._centre = QPointF()
        self._factor = factor
        self._color = QColor("#ffcc00")
        self.hide()

    def set_image(self, image: QImage | None) -> None:
        """The image to magnify; the caller keeps its pixel buffer alive."""
        self._image = image
        self.update()

    def set_color(self, color: str | QColor | None) -> None:
        """Crosshair colour: the colour of the keypoint about to be placed."""
        self._color = QColor(color) if color else QColor("#ffcc00")
        self.update()

    def set_factor(self, factor: float) -> None:
        self._factor = max(1.0, float(factor))
        self.update()

    def factor(self) -> float:
        return self._factor

    def set_centre(self, x: float, y: float) -> None:
        """The image point (image coordinates) shown under the crosshair."""
        self._centre = QPointF(x, y)
        self.update()

    def centre(self) -> QPointF:
        return QPointF(self._centre)

    def show_beside(self, cursor: QPointF, area: QSize) -> None:
        """Show next to `cursor` (parent coordinates), flipped to stay inside `area`: beside
        rather than under it, so the loupe never hides the spot being aimed at."""
        x, y = cursor.x() + OFFSET_PX, cursor.y() + OFFSET_PX
        if x + self.width() > area.width():
            x = cursor.x() - OFFSET_PX - self.width()
        if y + self.height() > area.height():
            y = cursor.y() - OFFSET_PX - self.height()
        self.move(int(x), int(y))
        self.show()
        self.raise_()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        target = QRectF(self.rect())
        painter.fillRect(target, _BACKGROUND)
        if self._image is not None and not self._image.isNull():
            w, h = target.width() / self._factor, target.height() / self._factor
            source = QRectF(self._centre.x() - w / 2, self._centre.y() - h / 2, w, h)
            # No SmoothPixmapTransform: the point of a loupe is to see the individual pixels.
            painter.drawImage(target, self._image, source)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self._paint_crosshair(painter, target.center())
        painter.setPen(QPen(_OUTLINE, 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(target.adjusted(1, 1, -1, -1))

    def _paint_crosshair(self, painter: QPainter, c: QPointF) -> None:
        half_w, half_h, gap = self.width() / 2, self.height() / 2, _CROSSHAIR_GAP_PX
        segments = [
            (QPointF(c.x() - half_w, c.y()), QPointF(c.x() - gap, c.y())),
            (QPointF(c.x() + gap, c.y()), QPointF(c.x() + half_w, c.y())),
            (QPointF(c.x(), c.y() - half_h), QPointF(c.x(), c.y() - gap)),
            (QPointF(c.x(), c.y() + gap), QPointF(c.x(), c.y() + half_h)),
        ]
        # A dark halo under the coloured line keeps it readable on light and dark images.
        for pen in (QPen(_OUTLINE, 3), QPen(self._color, 1)):
            painter.setPen(pen)
            for a, b in segments:
                painter.drawLine(a, b)
