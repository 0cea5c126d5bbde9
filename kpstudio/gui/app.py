"""Starting the studio: the QApplication, the window, an optional project to open."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from kpstudio import __version__, resource_path
from kpstudio.core.write_turn import EDIT_SWITCH_INTERVAL_S
from kpstudio.gui.gc_policy import GuiThreadCollector

_collector: GuiThreadCollector | None = None


def studio_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication set up as the studio runs (also for the benchmarks and screenshots,
    so that they measure what a user gets)."""
    global _collector
    # The user's edits must not wait on a worker thread holding the GIL (see the constant).
    sys.setswitchinterval(EDIT_SWITCH_INTERVAL_S)
    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName("kpstudio")
    app.setOrganizationName("kpstudio")
    app.setApplicationVersion(__version__)
    app.setWindowIcon(QIcon(str(resource_path("kpstudio.svg"))))
    if _collector is None:
        # Qt objects must never be destroyed by a collection that a worker thread set off.
        _collector = GuiThreadCollector(app)
        _collector.start()
    return app


def run_studio(project: str | Path | None = None, argv: list[str] | None = None) -> int:
    """Open the studio window (on `project` if given) and run until it closes."""
    app = studio_application(argv)
    from kpstudio.gui.main_window import MainWindow

    window = MainWindow()
    if project is not None:
        window.open_project(project)
    window.show()
    return app.exec()
