"""Open the studio on a project (default: a fresh demo project) and save a screenshot.

Run it under Xvfb to see the window as a person would:
    xvfb-run -s "-screen 0 1400x900x24" python scripts/screenshot.py out.png
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from kpstudio.core.demo import build_demo_project
from kpstudio.gui.main_window import MainWindow


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "kpstudio-screenshot.png")
    project = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    app = QApplication.instance() or QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp(prefix="kpstudio-shot-"))
    if project is None:
        project = tmp / "demo"
        build_demo_project(project)
    win = MainWindow(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat))
    win.resize(1400, 860)
    win.show()
    win.open_project(project)

    def shoot():
        # Select a labeled point so the selection style shows too.
        if win.controller and win.controller.states():
            win.controller.selected = next(iter(win.controller.states()))
            win.controller.refresh()
        win.grab().save(str(out))
        print(f"saved {out}")
        app.quit()

    QTimer.singleShot(1500, shoot)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
