"""What the image canvas draws over the image: keypoint markers, skeleton edges, predictions.

Items are built afresh from plain `Marker` values on every change, so graphics items never
become a second copy of the labels. They accept no mouse buttons: the canvas handles gestures.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QGraphicsLineItem

MARKER_RADIUS_PX = 5.0
DEFAULT_COLOR = "#ffcc00"
_WARNING_COLOR = QColor("#ff3b30")
_OUTLINE = QColor(0, 0, 0, 200)
# Stacking order: edges under predictions under labels, the selected label on top.
_Z_EDGE, _Z_PREDICTION, _Z_MARKER, _Z_SELECTED = 1, 2, 3, 4


@dataclass(frozen=True)
class Marker:
    """A keypoint to draw; visibility 1 occluded, 2 visible (absent ones are not passed)."""

    instance: int
    keypoint: str
    x: float
    y: float
    visibility: int


class MarkerItem(QGraphicsItem):
    """One keypoint symbol, the same size on screen at every zoom."""

    def __init__(self, color: QColor, style: str, selected: bool = False, warning: bool = False):
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self._color, self._style = color, style
        self._selected, self._warning = selected, warning

    def boundingRect(self) -> QRectF:
        r = MARKER_RADIUS_PX + 9
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        r, o = MARKER_RADIUS_PX, QPointF()
        if self._warning:
            painter.setPen(QPen(_WARNING_COLOR, 2.5))
            painter.drawEllipse(o, r + 3.5, r + 3.5)
        if self._selected:
            for pen in (QPen(_OUTLINE, 4), QPen(Qt.GlobalColor.white, 2)):
                painter.setPen(pen)
                painter.drawEllipse(o, r + 6.5, r + 6.5)
        # Dark halos under coloured strokes keep every style readable on any image.
        if self._style == "prediction":
            d = r + 1.5
            diamond = QPolygonF([QPointF(0, -d), QPointF(d, 0), QPointF(0, d), QPointF(-d, 0)])
            for pen in (QPen(_OUTLINE, 3.5), QPen(self._color, 1.5)):
                painter.setPen(pen)
                painter.drawPolygon(diamond)
        elif self._style == "occluded":
            dashed = QPen(self._color, 2)
            dashed.setDashPattern([2.0, 1.5])
            for pen in (QPen(_OUTLINE, 4), dashed):
                painter.setPen(pen)
                painter.drawEllipse(o, r, r)
        else:
            painter.setPen(QPen(_OUTLINE, 1.5))
            painter.setBrush(self._color)
            painter.drawEllipse(o, r, r)


def keypoint_color(colors: dict[str, str], keypoint: str) -> QColor:
    """The keypoint's colour from `colors`, or the default when missing or invalid."""
    color = QColor(colors.get(keypoint, DEFAULT_COLOR))
    return color if color.isValid() else QColor(DEFAULT_COLOR)


def overlay_items(
    markers: list[Marker],
    edges: list[tuple[str, str]],
    colors: dict[str, str],
    predictions: list[tuple[Marker, float | None]],
    selected: tuple[int, str] | None,
    warnings: dict[tuple[int, str], str],
) -> list[QGraphicsItem]:
    """The items to draw over the image, in the order to add them to the scene: skeleton
    edges within each instance, predictions (fainter when less confident), then labels."""
    items: list[QGraphicsItem] = []

    def add(item: QGraphicsItem, z: float, tip: str | None) -> QGraphicsItem:
        item.setZValue(z)
        item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)  # the view handles all gestures
        if tip:
            item.setToolTip(tip)
        items.append(item)
        return item

    at = {(m.instance, m.keypoint): m for m in markers}
    for instance in sorted({m.instance for m in markers}):
        for a, b in edges:
            ma, mb = at.get((instance, a)), at.get((instance, b))
            if ma is None or mb is None:
                continue
            color = keypoint_color(colors, a)
            color.setAlpha(200)
            pen = QPen(color, 1.5)
            pen.setCosmetic(True)
            if 1 in (ma.visibility, mb.visibility):
                pen.setDashPattern([3.0, 3.0])  # Qt's DashLine gaps vanish at this width
            add(QGraphicsLineItem(ma.x, ma.y, mb.x, mb.y), _Z_EDGE, None).setPen(pen)
    several = len({m.instance for m in markers}) > 1
    for m, conf in predictions:
        tip = (
            f"{m.keypoint} (prediction" + ("" if conf is None else f", confidence {conf:.2f}") + ")"
        )
        item = add(MarkerItem(keypoint_color(colors, m.keypoint), "prediction"), _Z_PREDICTION, tip)
        item.setPos(m.x, m.y)
        if conf is not None:
            item.setOpacity(0.35 + 0.65 * min(max(conf, 0.0), 1.0))
    for m in markers:
        key = (m.instance, m.keypoint)
        tip = m.keypoint + (f" (instance {m.instance})" if several else "")
        tip += " (occluded)" if m.visibility == 1 else ""
        warning = warnings.get(key)
        tip += f"\n⚠ {warning}" if warning else ""
        style = "occluded" if m.visibility == 1 else "visible"
        color = keypoint_color(colors, m.keypoint)
        item = MarkerItem(color, style, key == selected, bool(warning))
        add(item, _Z_SELECTED if key == selected else _Z_MARKER, tip).setPos(m.x, m.y)
    return items
