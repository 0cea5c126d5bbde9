"""The window fits a 1366×768 laptop with the canvas at ≥ 55 % of its width, grows on bigger
screens, and a layout saved on a big monitor is clamped to the screen it opens on."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QRect, QSettings, Qt  # noqa: E402

from kpstudio.gui import window_layout  # noqa: E402
from kpstudio.gui.main_window import MainWindow  # noqa: E402
from kpstudio.gui.window_layout import (  # noqa: E402
    CANVAS_SHARE,
    clamp_to,
    default_geometry,
    dock_widths,
)

# The free area of common screens: a 1366×768 laptop under a 32 px panel, a 1920×1080 monitor.
LAPTOP = QRect(0, 0, 1366, 736)
MONITOR = QRect(0, 0, 1920, 1048)
FRAME = (2 * 4, 30 + 4)  # a window manager's borders and title bar, generously


@pytest.mark.parametrize("available", [LAPTOP, MONITOR], ids=["1366x768", "1920x1080"])
def test_default_geometry_fits_the_screen_and_leaves_the_canvas_its_share(available):
    rect = default_geometry(available)
    assert available.contains(rect)
    left, right = dock_widths(rect.width())
    assert rect.width() - left - right >= CANVAS_SHARE * rect.width()


def test_the_canvas_grows_with_the_screen():
    laptop, monitor = default_geometry(LAPTOP), default_geometry(MONITOR)
    canvas = [g.width() - sum(dock_widths(g.width())) for g in (laptop, monitor)]
    assert canvas[1] > canvas[0] and monitor.height() > laptop.height()


def test_a_window_saved_on_a_big_monitor_is_clamped_to_a_laptop():
    saved = QRect(1700, 300, 2400, 1300)  # on the right of a 4K monitor
    clamped = clamp_to(saved, LAPTOP)
    assert LAPTOP.contains(clamped) and clamped.size().toTuple() == (1366, 736)
    assert clamp_to(QRect(100, 50, 800, 600), LAPTOP) == QRect(100, 50, 800, 600)


@pytest.fixture
def window(qtbot, tmp_path, demo):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    assert win.open_project(demo)
    return win


def test_the_real_window_fits_a_laptop_and_gives_the_canvas_its_share(qtbot, window):
    hint = window.minimumSizeHint()
    assert hint.width() + FRAME[0] <= LAPTOP.width()
    assert hint.height() + FRAME[1] <= LAPTOP.height()
    for available in (LAPTOP, MONITOR):
        rect = default_geometry(available)
        window.resize(rect.width() - FRAME[0], rect.height() - FRAME[1])
        window.show()
        qtbot.waitExposed(window)
        window_layout.arrange_docks(window)
        qtbot.wait(50)
        share = window.canvas.width() / window.width()
        assert share >= CANVAS_SHARE, (available, share)
        # Training and Review share one tabbed area, under the keypoints.
        assert window.tabifiedDockWidgets(window.train_dock) == [window.review_dock]
        assert window.keypoint_dock.height() >= 150  # more than three rows of keypoints


def test_a_saved_layout_from_a_big_monitor_opens_inside_the_screen(qtbot, tmp_path, demo,
                                                                   monkeypatch):  # fmt: skip
    monkeypatch.setattr(window_layout, "available_geometry", lambda window: LAPTOP)
    path = str(tmp_path / "settings.ini")
    big = MainWindow(QSettings(path, QSettings.Format.IniFormat))
    qtbot.addWidget(big)
    big.setGeometry(QRect(1700, 300, 2400, 1300))
    big.show()
    qtbot.waitExposed(big)
    big.resizeDocks([big.list_dock, big.keypoint_dock], [900, 900], Qt.Orientation.Horizontal)
    qtbot.wait(50)
    big.close()
    again = MainWindow(QSettings(path, QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    assert LAPTOP.contains(again.geometry())
    again.show()
    qtbot.waitExposed(again)
    qtbot.wait(50)
    assert again.canvas.width() >= CANVAS_SHARE * again.width()
    again.actions_by_name["reset_layout"].trigger()
    assert again.geometry() == default_geometry(LAPTOP)
