"""Open the studio on a project (default: a fresh demo project) and save a screenshot.

Run it under Xvfb to see the window as a person would, at its default size for the screen:
    xvfb-run -a -s "-screen 0 1366x768x24" python scripts/screenshot.py out.png [PROJECT] [--train]
It shoots the whole screen (so a window that does not fit shows it) and prints the window's
frame and the canvas's share of its width. With --train it presses Train and shoots after
~25 s (curves and the preview overlay); with --review it trains ~40 s, predicts all unlabeled
images and shoots the least confident one; with --assist it presses Assist, opens an unlabeled
image once a model is published, drags one suggestion a little (the others re-inferred from it)
and shoots the suggestions over the frame.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer

from kpstudio.core.demo import build_demo_project
from kpstudio.gui.app import studio_application
from kpstudio.gui.main_window import MainWindow


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    training = "--train" in sys.argv
    review = "--review" in sys.argv
    assist = "--assist" in sys.argv
    out = Path(args[0] if args else "kpstudio-screenshot.png")
    project = Path(args[1]) if len(args) > 1 else None
    app = studio_application()
    tmp = Path(tempfile.mkdtemp(prefix="kpstudio-shot-"))
    if project is None:
        project = tmp / "demo"
        build_demo_project(project)
    win = MainWindow(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat))
    win.show()
    win.open_project(project)

    def shoot():
        # Select a labeled point so the selection style shows too.
        if win.controller and win.controller.states():
            win.controller.selected = next(iter(win.controller.states()))
            win.controller.refresh()
        screen = win.screen()
        screen.grabWindow(0).save(str(out))
        frame, free = win.frameGeometry(), screen.availableGeometry()
        share = win.canvas.width() / win.width()
        print(
            f"saved {out}: screen {free.width()}×{free.height()}, window frame "
            f"{frame.width()}×{frame.height()} at ({frame.x()}, {frame.y()}), "
            f"fits: {free.contains(frame)}, canvas {share:.0%} of the width"
        )
        win.training.stop_and_wait()
        app.quit()

    if training or review:
        win.train_panel.minutes.setValue(2.0)
        win.train_panel.train_button.click()

    def predict_all():
        win.training.stop_and_wait()
        QTimer.singleShot(3000, win.review.predict_unlabeled)
        QTimer.singleShot(20000, show_least_confident)

    def show_least_confident():
        panel = win.review_panel
        panel.rank_by.setCurrentIndex(1)  # lowest confidence (unlabeled)
        ids = panel.image_ids()
        if ids:
            win.show_image(ids[0])
        QTimer.singleShot(1500, shoot)

    def suggest():
        doc = win.doc
        unlabeled = [r.id for r in doc.project.images() if r.status == "unlabeled"]
        if unlabeled:
            win.show_image(unlabeled[0])
        QTimer.singleShot(2000, correct_one)

    def correct_one():
        shown = win.overlay.shown_objects
        if shown:
            name = win.doc.skeleton.keypoints[0]
            x, y = shown[0].xy[0]
            win.review.take_suggestion(0, name, float(x) + 3.0, float(y) + 2.0)
        QTimer.singleShot(1500, shoot)

    if assist:
        win.train_panel.assist_button.click()
        published = []

        def on_published(*_):
            published.append(1)
            if len(published) == 4:  # a model past its first epochs: suggestions worth a look
                QTimer.singleShot(500, suggest)

        win.training.model_published.connect(on_published)
    elif review:
        QTimer.singleShot(40000, predict_all)
    else:
        QTimer.singleShot(25000 if training else 1500, shoot)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
