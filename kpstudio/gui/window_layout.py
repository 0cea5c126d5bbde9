"""Where the studio window and its docks go, from the screen's available area.

The canvas is the window: the docks take a bounded share of its width (the canvas keeps at
least CANVAS_SHARE of it on a 1366×768 laptop and more on bigger screens), Training and
Review share one tabbed area under the keypoint list, and a layout saved on a big monitor is
clamped to the screen it is restored on. The sizing is plain functions of the available
rectangle, so tests check it for any screen.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QRect, QSize, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMainWindow

CANVAS_SHARE = 0.55  # the least share of the window's width the image canvas gets
LEFT_SHARE, LEFT_MIN, LEFT_MAX = 0.16, 170, 320  # the image list
RIGHT_SHARE, RIGHT_MIN, RIGHT_MAX = 0.22, 240, 440  # keypoints, training, review
KEYPOINTS_SHARE = 0.38  # of the right column's height, the rest for Training / Review
SPLITTERS_PX = 24  # the splitters and dock frames between the canvas and the docks
BIG_SCREEN_WIDTH = 1600  # wider than this, the window leaves a margin round it


def default_geometry(available: QRect) -> QRect:
    """The window's frame on a screen whose free area is `available`: all of it on a laptop,
    a centred 90 % of it on a big screen (the window grows with the screen)."""
    if available.width() <= BIG_SCREEN_WIDTH:
        return QRect(available)
    size = QSize(int(available.width() * 0.9), int(available.height() * 0.9))
    rect = QRect(available.topLeft(), size)
    rect.moveCenter(available.center())
    return rect


def dock_widths(window_width: int) -> tuple[int, int]:
    """(image list, right column) widths for a window `window_width` wide."""
    left = min(max(window_width * LEFT_SHARE, LEFT_MIN), LEFT_MAX)
    right = min(max(window_width * RIGHT_SHARE, RIGHT_MIN), RIGHT_MAX)
    # A narrow window: the docks give way (the splitters between them take a few pixels).
    room = (1 - CANVAS_SHARE) * window_width - SPLITTERS_PX
    if left + right > room:
        left, right = left * room / (left + right), right * room / (left + right)
    return int(left), int(right)


def clamp_to(rect: QRect, available: QRect) -> QRect:
    """`rect` made to fit inside `available`: shrunk where larger, moved where it sticks out."""
    width, height = min(rect.width(), available.width()), min(rect.height(), available.height())
    left = min(max(rect.left(), available.left()), available.right() + 1 - width)
    top = min(max(rect.top(), available.top()), available.bottom() + 1 - height)
    return QRect(left, top, width, height)


def available_geometry(window: QMainWindow) -> QRect:
    screen = window.screen() or QGuiApplication.primaryScreen()
    return screen.availableGeometry()


def arrange_docks(window, width: int | None = None, height: int | None = None) -> None:
    """The default dock arrangement: images left; keypoints right with Training and Review
    tabbed below them; dock widths from `dock_widths`."""
    left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
    for dock in (window.list_dock, window.keypoint_dock, window.train_dock, window.review_dock):
        dock.setFloating(False)
        dock.show()
    window.addDockWidget(left, window.list_dock)
    window.addDockWidget(right, window.keypoint_dock)
    window.addDockWidget(right, window.train_dock)
    window.splitDockWidget(window.keypoint_dock, window.train_dock, Qt.Orientation.Vertical)
    window.tabifyDockWidget(window.train_dock, window.review_dock)
    window.train_dock.raise_()
    width = width or window.width()
    height = height or window.height()
    list_width, right_width = dock_widths(width)
    window.resizeDocks([window.list_dock, window.keypoint_dock], [list_width, right_width],
                       Qt.Orientation.Horizontal)  # fmt: skip
    keypoints = int(height * KEYPOINTS_SHARE)
    below = max(height - keypoints, 1)
    window.resizeDocks([window.keypoint_dock, window.train_dock], [keypoints, below],
                       Qt.Orientation.Vertical)  # fmt: skip


def restore_layout(window, geometry: QByteArray | None, state: QByteArray | None) -> None:
    """The saved geometry and dock state, clamped to the screen the window is on now; the
    default layout where none is saved, or where the saved docks would squeeze the canvas."""
    available = available_geometry(window)
    if geometry is None or not window.restoreGeometry(geometry):
        window.setGeometry(default_geometry(available))
    window.setGeometry(clamp_to(window.geometry(), available))
    arrange_docks(window)
    if state is not None:
        window.restoreState(state)  # fit_docks_to_canvas checks it once the window is shown


def fit_docks_to_canvas(window) -> None:
    """Back to the default docks when (restored) docks leave the canvas less than its share."""
    if window.centralWidget().width() < CANVAS_SHARE * window.width():
        arrange_docks(window)


def reset_layout(window) -> None:
    """View → Reset layout: the default geometry and docks for the screen the window is on."""
    window.showNormal()
    window.setGeometry(default_geometry(available_geometry(window)))
    arrange_docks(window)
