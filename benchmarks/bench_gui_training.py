"""UI responsiveness while the default model trains in the studio's worker thread.

Opens the demo project, presses Train (default architecture, its default input size), and for
--seconds measures how late a 5 ms timer in the UI thread fires while the user keeps labeling
(a click every 200 ms on the current image, an image switch every 2 s). Prints p50/p99/max
latency and how many epochs trained meanwhile. Target: p99 ≤ 50 ms.

--assist presses Assist instead: the labels clicked meanwhile join the running training, and each
better model is published and swapped into the window (suggestions on the image shown). It
also prints how many models were published and, for each click, the seconds until the next
model published after it (the correction's way to fresh suggestions: target p50 ≤ 30 s).

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_gui_training.py [--seconds 40] [--assist]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from latency_probe import LatencyProbe  # noqa: E402
from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from kpstudio.core.demo import build_demo_project  # noqa: E402
from kpstudio.gui.app import studio_application  # noqa: E402
from kpstudio.gui.main_window import MainWindow  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--assist", action="store_true", help="Assist instead of Train")
    args = parser.parse_args()
    app = studio_application()
    base = Path(tempfile.mkdtemp(prefix="kpstudio-bench-train-ui-"))
    build_demo_project(base / "demo")
    win = MainWindow(QSettings(str(base / "s.ini"), QSettings.Format.IniFormat))
    win.resize(1400, 900)
    win.show()
    win.open_project(base / "demo")
    unlabeled = [r.id for r in win.doc.images() if r.status == "unlabeled"]
    win.train_panel.minutes.setValue(args.seconds / 60 + 1)
    published: list[float] = []
    win.training.model_published.connect(lambda *a: published.append(time.perf_counter()))
    (win.train_panel.assist_button if args.assist else win.train_panel.train_button).click()
    # Wait for the first epoch: TensorFlow's import and tracing are part of the run's start.
    while win.train_panel.curve_points() < 1:
        app.processEvents()
        time.sleep(0.002)
    first_epoch = win.train_panel.curve_points()

    probe = LatencyProbe()
    probe.start()
    end = time.perf_counter() + args.seconds
    clicks = switches = 0
    clicked_at: list[float] = []
    next_click, next_switch = time.perf_counter(), time.perf_counter()
    while time.perf_counter() < end:
        now = time.perf_counter()
        if now >= next_switch and unlabeled:
            win.show_image(unlabeled[switches % len(unlabeled)])
            switches += 1
            next_switch = now + 2.0
        if now >= next_click and win.canvas.image_size() is not None:
            width, height = win.canvas.image_size()
            x, y = 10 + (clicks * 37) % (width - 20), 10 + (clicks * 23) % (height - 20)
            spot = win.canvas.view_pos_for(x, y)
            QTest.mouseClick(win.canvas.viewport(), Qt.MouseButton.LeftButton,
                             Qt.KeyboardModifier.NoModifier, spot)  # fmt: skip
            clicks += 1
            clicked_at.append(now)
            next_click = now + 0.2
        app.processEvents()
        time.sleep(0.001)
    late = probe.stop()
    trained = win.train_panel.curve_points() - first_epoch
    win.training.stop_and_wait()
    win.close()
    print(
        f"studio latency while training the default model ({args.seconds:g} s measured, "
        f"{trained} epochs trained meanwhile, {clicks} clicks, {switches} image switches)"
    )
    print(f"  event-loop latency   p50 {np.percentile(late, 50):6.2f} ms   "
          f"p99 {np.percentile(late, 99):6.2f} ms   max {late.max():6.2f} ms   "
          f"target p99 ≤ 50 ms   ({len(late)} ticks)")  # fmt: skip
    if args.assist:
        waits = [next(p for p in published if p > c) - c for c in clicked_at
                 if any(p > c for p in published)]  # fmt: skip
        print(f"  Assist: {len(published)} models published; click → next published model "
              + (f"p50 {np.percentile(waits, 50):.1f} s, p95 {np.percentile(waits, 95):.1f} s "
                 f"({len(waits)} clicks)" if waits else "n/a"))  # fmt: skip


if __name__ == "__main__":
    main()
