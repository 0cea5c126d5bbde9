"""The studio window on a small demo project, set to train tiny models quickly (a fixture the
case files import: a second conftest.py would shadow tests/conftest.py's `from conftest import`)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

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
