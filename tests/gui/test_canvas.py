"""The image canvas and the image loader, driven the way a user drives them (offscreen Qt)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QKeyEvent, QWheelEvent  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from kpstudio.gui.canvas import ImageCanvas, Marker  # noqa: E402
from kpstudio.gui.image_loader import ImageLoader  # noqa: E402
from kpstudio.gui.loupe import Loupe  # noqa: E402

W, H = 640, 480
LEFT, MIDDLE = Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton
NOMOD = Qt.KeyboardModifier.NoModifier


def _show(qtbot, image: np.ndarray) -> ImageCanvas:
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(800, 600)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_image(image)
    qtbot.wait(20)  # scroll bars appear, the viewport shrinks, the view refits
    return canvas


@pytest.fixture
def canvas(qtbot) -> ImageCanvas:
    rng = np.random.default_rng(0)
    return _show(qtbot, rng.integers(0, 256, (H, W, 3), dtype=np.uint8))


def _image_point(canvas: ImageCanvas, pos: QPoint) -> QPointF:
    """The image point shown by the viewport pixel `pos` (its centre), from the view's own
    transform: independent of the canvas's event handling."""
    inverse, _ = canvas.viewportTransform().inverted()
    return inverse.map(QPointF(pos) + QPointF(0.5, 0.5))


def _click_args(qtbot, canvas: ImageCanvas, x: float, y: float) -> list:
    with qtbot.waitSignal(canvas.clicked_empty, timeout=1000) as blocker:
        QTest.mouseClick(canvas.viewport(), LEFT, NOMOD, canvas.view_pos_for(x, y))
    return blocker.args


def _wheel(canvas: ImageCanvas, pos: QPoint, notches: int) -> None:
    vp = canvas.viewport()
    event = QWheelEvent(QPointF(pos), QPointF(vp.mapToGlobal(pos)), QPoint(0, 0),
                        QPoint(0, 120 * notches), Qt.MouseButton.NoButton, NOMOD,
                        Qt.ScrollPhase.NoScrollPhase, False)  # fmt: skip
    QApplication.sendEvent(vp, event)


def _drag(canvas: ImageCanvas, button, start: QPoint, end: QPoint, steps: int = 5) -> None:
    vp = canvas.viewport()
    QTest.mousePress(vp, button, NOMOD, start)
    for i in range(1, steps + 1):
        QTest.mouseMove(vp, start + (end - start) * (i / steps))
    QTest.mouseRelease(vp, button, NOMOD, end)


def test_click_reports_the_image_point_at_fit_zoomed_and_panned(qtbot, canvas):
    x, y = 100.5, 200.25
    for step in ("fit", "zoomed", "panned"):
        if step == "zoomed":
            canvas.zoom_by(3, QPointF(canvas.view_pos_for(x, y)))
        elif step == "panned":
            for bar, by in ((canvas.horizontalScrollBar(), 37), (canvas.verticalScrollBar(), -23)):
                bar.setValue(bar.value() + by)
        tolerance = 0.5 / canvas.zoom() + 1e-9
        cx, cy = _click_args(qtbot, canvas, x, y)
        assert abs(cx - x) <= tolerance and abs(cy - y) <= tolerance, step
    assert canvas.zoom() > 3


def test_zoom_by_keeps_the_anchor_point_and_reports_zoom(qtbot, canvas):
    anchor = QPointF(canvas.view_pos_for(500, 60))
    before = canvas.viewportTransform().inverted()[0].map(anchor)
    with qtbot.waitSignal(canvas.zoom_changed, timeout=1000) as blocker:
        canvas.zoom_by(4, anchor)
    assert blocker.args[0] == pytest.approx(canvas.zoom())
    after = canvas.viewportTransform().map(before)
    assert abs(after.x() - anchor.x()) <= 1 and abs(after.y() - anchor.y()) <= 1
    canvas.zoom_1to1()
    assert canvas.zoom() == pytest.approx(1.0)
    canvas.fit()
    assert canvas.zoom() == pytest.approx(min((canvas.viewport().width() - 8) / W,
                                              (canvas.viewport().height() - 8) / H))  # fmt: skip


def test_click_outside_the_image_emits_nothing(qtbot, canvas):
    canvas.zoom_by(0.5)
    assert canvas.view_pos_for(0, 0).x() > 20  # the image no longer reaches the corner
    with qtbot.assertNotEmitted(canvas.clicked_empty, wait=50):
        QTest.mouseClick(canvas.viewport(), LEFT, NOMOD, QPoint(5, 5))
        QTest.mouseClick(canvas.viewport(), LEFT, NOMOD, canvas.view_pos_for(W + 10, H / 2))


def test_cursor_position_is_reported_on_and_off_the_image(qtbot, canvas):
    with qtbot.waitSignal(canvas.cursor_moved, timeout=1000) as blocker:
        QTest.mouseMove(canvas.viewport(), canvas.view_pos_for(320.5, 10.5))
    assert blocker.args == pytest.approx([320.5, 10.5], abs=0.5 / canvas.zoom() + 1e-9)
    canvas.zoom_by(0.5)
    with qtbot.waitSignal(canvas.cursor_moved, timeout=1000) as blocker:
        QTest.mouseMove(canvas.viewport(), QPoint(3, 3))
    assert all(math.isnan(v) for v in blocker.args)


def test_wheel_zooms_around_the_cursor(qtbot, canvas):
    # From the fitted view: the middle, the corners (the image must be free to slide), out.
    for x, y, notches in ((300, 200, 2), (5, 5, 3), (630, 470, 1), (320, 240, -2)):
        canvas.fit()
        pos = canvas.view_pos_for(x, y)
        target = _image_point(canvas, pos)
        zoom = canvas.zoom()
        _wheel(canvas, pos, notches)
        assert canvas.zoom() == pytest.approx(zoom * 1.2**notches, rel=1e-6)
        shown_at = canvas.viewportTransform().map(target)
        assert abs(shown_at.x() - (pos.x() + 0.5)) <= 1, (x, y)
        assert abs(shown_at.y() - (pos.y() + 0.5)) <= 1, (x, y)


def test_pans_move_the_view_without_placing_a_point(qtbot, canvas):
    canvas.zoom_by(3)
    vp = canvas.viewport()
    for button, space in ((MIDDLE, False), (LEFT, False), (LEFT, True)):
        start = QPoint(400, 300)
        before = _image_point(canvas, start)
        if space:
            QTest.keyPress(canvas, Qt.Key.Key_Space)
        with qtbot.assertNotEmitted(canvas.clicked_empty, wait=20):
            _drag(canvas, button, start, start + QPoint(-60, 45))
        if space:
            QTest.keyRelease(canvas, Qt.Key.Key_Space)
        # The image point that was under the mouse followed it.
        moved_to = canvas.viewportTransform().map(before)
        assert abs(moved_to.x() - 340.5) <= 1 and abs(moved_to.y() - 345.5) <= 1, button
    assert vp.cursor().shape() != Qt.CursorShape.ClosedHandCursor


def test_marker_press_selects_and_drag_reports_clamped_positions(qtbot, canvas):
    markers = [Marker(0, "nose", 300.0, 200.0, 2), Marker(0, "tail", 350.0, 260.0, 1)]
    canvas.set_markers(markers, [("nose", "tail")], {"nose": "#ff0000", "tail": "#00ff00"})
    dragged = []
    canvas.marker_dragged.connect(lambda *args: dragged.append(args))
    start = canvas.view_pos_for(300.0, 200.0)
    with qtbot.waitSignal(canvas.marker_clicked, timeout=1000) as blocker:
        QTest.mousePress(canvas.viewport(), LEFT, NOMOD, start)
    assert blocker.args == [0, "nose"]
    end = canvas.view_pos_for(420.5, 100.5)
    for i in range(1, 6):
        QTest.mouseMove(canvas.viewport(), start + (end - start) * (i / 5))
    QTest.mouseRelease(canvas.viewport(), LEFT, NOMOD, end)
    assert dragged and all(not a[4] for a in dragged[:-1])
    instance, keypoint, x, y, finished = dragged[-1]
    assert (instance, keypoint, finished) == (0, "nose", True)
    # Half a screen pixel from where the press landed on the marker, half from the release.
    tolerance = 1.0 / canvas.zoom() + 1e-9
    assert abs(x - 420.5) <= tolerance and abs(y - 100.5) <= tolerance

    dragged.clear()
    canvas.set_markers(markers, [], {})
    _drag(canvas, LEFT, canvas.view_pos_for(350.0, 260.0), canvas.view_pos_for(-30, H + 80))
    assert dragged[-1] == (0, "tail", 0.0, float(H), True)
    assert all(0 <= a[2] <= W and 0 <= a[3] <= H for a in dragged)


def test_marker_hit_radius_is_in_screen_pixels(qtbot, canvas):
    canvas.set_markers([Marker(1, "ear", 200.0, 150.0, 2)], [], {"ear": "#0000ff"})
    for zoom_by in (1.0, 6.0):
        canvas.zoom_by(zoom_by, QPointF(canvas.view_pos_for(200.0, 150.0)))
        centre = canvas.view_pos_for(200.0, 150.0)
        with qtbot.waitSignal(canvas.marker_clicked, timeout=1000):
            QTest.mouseClick(canvas.viewport(), LEFT, NOMOD, centre + QPoint(6, 0))
        with qtbot.assertNotEmitted(canvas.marker_clicked, wait=20):
            with qtbot.waitSignal(canvas.clicked_empty, timeout=1000):
                QTest.mouseClick(canvas.viewport(), LEFT, NOMOD, centre + QPoint(14, 0))


def test_markers_are_drawn_in_their_styles(qtbot):
    canvas = _show(qtbot, np.full((H, W, 3), 128, np.uint8))
    markers = [Marker(0, "nose", 100.0, 100.0, 2), Marker(0, "tail", 300.0, 300.0, 1)]
    canvas.set_markers(markers, [("nose", "tail")], {"nose": "#ff0000", "tail": "#00ff00"})
    canvas.set_predictions([Marker(0, "nose", 500.0, 100.0, 2)], [0.9])
    canvas.set_selected(0, "nose")
    canvas.set_warnings({(0, "tail"): "far from its usual place"})
    shot = canvas.viewport().grab().toImage()

    def colour(x: float, y: float) -> tuple[int, int, int]:
        c = shot.pixelColor(canvas.view_pos_for(x, y))
        return c.red(), c.green(), c.blue()

    assert colour(100, 100) == (255, 0, 0)  # visible: filled in its colour
    assert colour(300, 300) == (128, 128, 128)  # occluded: hollow
    assert colour(500, 100) == (128, 128, 128)  # prediction: hollow diamond
    # The edge between them, dashed because the tail is occluded.
    start, end = canvas.view_pos_for(160, 160), canvas.view_pos_for(240, 240)
    on_edge = [shot.pixelColor(start + QPoint(k, k)) for k in range(end.x() - start.x())]
    assert sum(c.red() > 170 for c in on_edge) >= 20
    assert sum(c.getRgb()[:3] == (128, 128, 128) for c in on_edge) >= 10
    tips = {item.toolTip() for item in canvas.scene().items() if item.toolTip()}
    assert any(t.startswith("nose") for t in tips)
    assert any("tail" in t and "far from its usual place" in t for t in tips)


def test_loupe_follows_the_cursor_while_placing(qtbot, canvas):
    loupe = canvas.viewport().findChild(Loupe)
    vp = canvas.viewport()
    QTest.mouseMove(vp, canvas.view_pos_for(100, 120))
    assert not loupe.isVisible()
    canvas.set_placing("nose", "#ff0000")
    QTest.mouseMove(vp, canvas.view_pos_for(150, 220))
    assert loupe.isVisible()
    assert loupe.centre().x() == pytest.approx(150, abs=0.5 / canvas.zoom() + 1e-9)
    assert loupe.centre().y() == pytest.approx(220, abs=0.5 / canvas.zoom() + 1e-9)
    assert not loupe.geometry().contains(canvas.view_pos_for(150, 220))  # beside, not over
    canvas.zoom_by(0.5)
    QTest.mouseMove(vp, QPoint(3, 3))  # off the image
    assert not loupe.isVisible()
    QTest.mouseMove(vp, canvas.view_pos_for(600, 400))
    assert loupe.isVisible()
    canvas.set_placing(None, None)
    assert not loupe.isVisible()


def test_keys_go_to_the_main_window_not_the_scroll_bars(qtbot, canvas):
    canvas.zoom_by(4)
    bars = (canvas.horizontalScrollBar().value(), canvas.verticalScrollBar().value())
    for key in (Qt.Key.Key_Right, Qt.Key.Key_Down, Qt.Key.Key_Delete, Qt.Key.Key_V):
        event = QKeyEvent(QEvent.Type.KeyPress, key, NOMOD)
        QApplication.sendEvent(canvas, event)
        assert not event.isAccepted(), key
    assert (canvas.horizontalScrollBar().value(), canvas.verticalScrollBar().value()) == bars


def test_new_image_size_fits_same_size_keeps_the_view(qtbot, canvas):
    canvas.zoom_by(5, QPointF(100, 100))
    zoom = canvas.zoom()
    canvas.set_image(np.zeros((H, W, 3), np.uint8))
    assert canvas.zoom() == pytest.approx(zoom)
    canvas.set_image(np.zeros((1000, 200, 3), np.uint8))
    assert canvas.image_size() == (200, 1000)
    assert canvas.zoom() == pytest.approx((canvas.viewport().height() - 8) / 1000)
    canvas.set_image(None)
    assert canvas.image_size() is None
    with qtbot.assertNotEmitted(canvas.clicked_empty, wait=20):
        QTest.mouseClick(canvas.viewport(), LEFT, NOMOD, QPoint(400, 300))


# -- ImageLoader -------------------------------------------------------------------------------
def _png(path, width: int, height: int, value: int):
    ok, data = cv2.imencode(".png", np.full((height, width, 3), value, np.uint8))
    assert ok
    path.write_bytes(data.tobytes())
    return path


@pytest.fixture
def loader(qtbot):
    loader = ImageLoader()
    yield loader
    loader.wait_for_done(5000)


def test_loader_decodes_off_the_ui_thread_and_caches(qtbot, tmp_path, loader):
    path = _png(tmp_path / "a.png", 64, 48, 77)
    with qtbot.waitSignal(loader.loaded, timeout=5000) as blocker:
        loader.request(7, path)
    image_id, image = blocker.args
    assert image_id == 7 and image.shape == (48, 64, 3) and image.dtype == np.uint8
    assert (image == 77).all()
    assert loader.cached(7, path) is image
    with qtbot.waitSignal(loader.loaded, timeout=1000) as blocker:
        loader.request(7, path)
    assert blocker.args[1] is image  # from the cache: no decode


def test_loader_drops_stale_requests(qtbot, tmp_path, loader):
    a = _png(tmp_path / "a.png", 900, 700, 10)
    b = _png(tmp_path / "b.png", 40, 30, 200)
    delivered = []
    loader.loaded.connect(lambda image_id, image: delivered.append((image_id, image.shape)))
    with qtbot.waitSignal(loader.loaded, timeout=5000):
        loader.request(1, a)
        loader.request(2, b)
    loader.wait_for_done(5000)
    qtbot.wait(50)  # any late result for A would have been delivered by now
    assert delivered == [(2, (30, 40, 3))]


def test_loader_reports_unreadable_files_and_prefetches(qtbot, tmp_path, loader):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    with qtbot.waitSignal(loader.failed, timeout=5000) as blocker:
        loader.request(3, bad)
    assert blocker.args[0] == 3 and "broken.png" in blocker.args[1]
    with qtbot.waitSignal(loader.failed, timeout=5000) as blocker:
        loader.request(4, tmp_path / "missing.png")
    assert "missing.png" in blocker.args[1]

    nxt = _png(tmp_path / "next.png", 20, 10, 5)
    with qtbot.assertNotEmitted(loader.loaded, wait=50):
        loader.prefetch(5, nxt)
        qtbot.waitUntil(lambda: loader.cached(5, nxt) is not None, timeout=5000)
    with qtbot.waitSignal(loader.loaded, timeout=1000) as blocker:
        loader.request(5, nxt)
    assert blocker.args[1].shape == (10, 20, 3)
