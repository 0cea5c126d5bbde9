"""The studio window on a small demo project, set to train tiny models quickly (a fixture the
case files import: a second conftest.py would shadow tests/conftest.py's `from conftest import`)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest

from kpstudio.core.demo import build_demo_project
from kpstudio.gui.main_window import MainWindow


@pytest.fixture
def window(qtbot, tmp_path):
    folder = tmp_path / "demo"
    build_demo_project(folder, n_images=12)
    win = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.resize(1300, 850)
    win.show()
    assert win.open_project(folder)
    win.training.overrides = {"params": {"width": 8, "decoder": 16}}
    panel = win.train_panel
    panel.input_size.setValue(64)
    panel.batch_size.setValue(8)
    panel.minutes.setValue(5.0)
    return win


def train_two_epochs_and_stop(qtbot, window):
    """Press Train, let two epochs finish, press Stop and wait until the run is recorded."""
    panel = window.train_panel
    QTest.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.curve_points() >= 2, timeout=90_000)
    QTest.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.training.running, timeout=15_000)
    qtbot.waitUntil(lambda: panel.train_button.isEnabled(), timeout=5_000)
    return panel
