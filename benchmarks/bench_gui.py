"""Studio responsiveness: image switch, click-to-draw, a drag, event-loop latency with 100,000
images.

Prints: time to switch images (640×480 and 24 MP, first view and cached), time from a click on
the canvas to the marker drawn (the label written to SQLite included), the same for each mouse
event of a drag gesture (moves drawn live; the release writes the label), and the UI event
loop's latency p50/p99 while the image list holds 100,000 entries and the user scrolls and
filters. Targets: image switch ≤ 50 ms for 640×480; click-to-draw and drag events median
≤ 16 ms, p99 ≤ 50 ms; event loop p99 ≤ 50 ms. Python's switch interval is set as the studio
sets it.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_gui.py [--images 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from latency_probe import LatencyProbe  # noqa: E402
from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from kpstudio.core.project import Project  # noqa: E402
from kpstudio.core.skeleton import Skeleton  # noqa: E402
from kpstudio.gui.app import studio_application  # noqa: E402
from kpstudio.gui.main_window import MainWindow  # noqa: E402

KEYPOINTS = [f"kp{i:02d}" for i in range(17)]


def _write(path: Path, width: int, height: int, rng, quality=90) -> tuple:
    image = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    ext = path.suffix
    ok, data = cv2.imencode(
        ext, image, [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else []
    )
    path.write_bytes(data.tobytes())
    return (path, width, height, hashlib.sha256(data.tobytes()).hexdigest())


def _until(app, condition, timeout=30.0) -> float:
    start = time.perf_counter()
    while not condition():
        app.processEvents()
        if time.perf_counter() - start > timeout:
            raise TimeoutError("the window did not get there in time")
    return time.perf_counter() - start


def _switch_times(app, win, ids, size) -> tuple[float, float]:
    first, cached = [], []
    for image_id in ids:
        for bucket in (first, cached):
            other = ids[0] if image_id != ids[0] else ids[1]
            win.show_image(other)
            _until(app, lambda o=other: win.canvas.image_size() is not None
                   and win.controller.image_id == o)  # fmt: skip
            t0 = time.perf_counter()
            win.show_image(image_id)
            _until(app, lambda i=image_id: win.canvas.image_size() == size
                   and win.controller.image_id == i)  # fmt: skip
            win.canvas.viewport().repaint()
            bucket.append(time.perf_counter() - t0)
    return statistics.median(first) * 1000, statistics.median(cached) * 1000


def _drag_times(win, image_id) -> tuple[list[float], list[float]]:
    """Drag each keypoint 30 px in 15 mouse moves, then release; every event is timed up to
    the repainted canvas. Returns (each move's seconds, each release's seconds)."""
    viewport, moves, releases = win.canvas.viewport(), [], []
    button, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    for name in KEYPOINTS:
        start = win.doc.point(image_id, name)
        QTest.mousePress(viewport, button, none, win.canvas.view_pos_for(start.x, start.y))
        for step in range(1, 16):
            pos = win.canvas.view_pos_for(start.x + 2 * step, start.y + step)
            t0 = time.perf_counter()
            QTest.mouseMove(viewport, pos)
            viewport.repaint()
            moves.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        QTest.mouseRelease(viewport, button, none, pos)
        viewport.repaint()
        releases.append(time.perf_counter() - t0)
        moved = win.doc.point(image_id, name)
        assert abs(moved.x - start.x - 30) < 1, f"the drag of {name} did not land"
    return moves, releases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    args = parser.parse_args()
    app = studio_application()
    rng = np.random.default_rng(0)
    base = Path(tempfile.mkdtemp(prefix="kpstudio-bench-gui-"))
    (base / "img").mkdir()
    skeleton = Skeleton.create(KEYPOINTS)
    small = [_write(base / "img" / f"s{i}.png", 640, 480, rng) for i in range(6)]
    big = [_write(base / "img" / f"b{i}.jpg", 6000, 4000, rng) for i in range(3)]
    with Project.create(base / "proj", skeleton) as project:
        ids_small = project.add_images(small)
        ids_big = project.add_images(big)
        fake = ((base / "img" / f"missing{i:06d}.jpg", 1920, 1080, f"{i:064x}")
                for i in range(args.images - len(small) - len(big)))  # fmt: skip
        project.add_images(fake)

    settings = QSettings(str(base / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings)
    win.resize(1400, 900)
    win.show()
    t0 = time.perf_counter()
    win.open_project(base / "proj")
    app.processEvents()
    t_open = time.perf_counter() - t0

    small_first, small_cached = _switch_times(app, win, ids_small[:4], (640, 480))
    big_first, big_cached = _switch_times(app, win, ids_big[:2], (6000, 4000))

    # Click to marker drawn: the click handler writes the label (one SQLite transaction),
    # the Document signals, the canvas redraws; repaint() forces the paint itself.
    win.show_image(ids_small[5])
    _until(app, lambda: win.canvas.image_size() == (640, 480))
    clicks = []
    for i in range(len(KEYPOINTS)):
        pos = win.canvas.view_pos_for(20 + 30 * i, 40 + 20 * i)
        t0 = time.perf_counter()
        QTest.mouseClick(win.canvas.viewport(), Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.NoModifier, pos)  # fmt: skip
        win.canvas.viewport().repaint()
        clicks.append(time.perf_counter() - t0)
    assert len(win.doc.labels(ids_small[5])) == len(KEYPOINTS), "clicks did not all land"
    drags, releases = _drag_times(win, ids_small[5])

    # Event-loop latency: a 5 ms timer measures how late it fires while the user scrolls the
    # 100k list, filters it and switches images.
    probe = LatencyProbe()
    probe.start()
    panel = win.image_list
    view = panel.findChild(type(panel.view)) if hasattr(panel, "view") else None
    end = time.perf_counter() + 6.0
    step = 0
    while time.perf_counter() < end:
        step += 1
        if view is not None:
            bar = view.verticalScrollBar()
            bar.setValue((bar.value() + 997) % max(1, bar.maximum()))
        if step % 50 == 0:
            win.show_image(ids_small[step // 50 % len(ids_small)])
        app.processEvents()
        time.sleep(0.001)
    late = probe.stop()
    win.close()

    print(f"studio benchmark: {args.images:,} images in the list, {len(KEYPOINTS)} keypoints")
    print(f"  open project (window ready)        {t_open * 1000:8.1f} ms")
    print(f"  image switch 640×480   first {small_first:7.1f} ms   cached {small_cached:6.1f} ms"
          "   target ≤ 50 ms")  # fmt: skip
    print(f"  image switch 24 MP     first {big_first:7.1f} ms   cached {big_cached:6.1f} ms"
          "   (decoded off the UI thread)")  # fmt: skip
    print(f"  click → marker drawn   median {statistics.median(clicks) * 1000:6.2f} ms   "
          f"p99 {np.percentile(clicks, 99) * 1000:6.2f} ms   max {max(clicks) * 1000:6.2f} ms   "
          "target median ≤ 16 ms, p99 ≤ 50 ms")  # fmt: skip
    print(f"  drag: mouse move → drawn   median {statistics.median(drags) * 1000:6.2f} ms   "
          f"p99 {np.percentile(drags, 99) * 1000:6.2f} ms   ({len(drags)} moves)")  # fmt: skip
    print(f"  drag: release → written + drawn   median {statistics.median(releases) * 1000:6.2f}"
          f" ms   p99 {np.percentile(releases, 99) * 1000:6.2f} ms   target median ≤ 16 ms, "
          "p99 ≤ 50 ms")  # fmt: skip
    print(f"  event-loop latency     p50 {np.percentile(late, 50):6.2f} ms   "
          f"p99 {np.percentile(late, 99):6.2f} ms   max {late.max():6.2f} ms   target p99 ≤ 50 ms"
          f"   ({len(late)} ticks)")  # fmt: skip


if __name__ == "__main__":
    main()
