"""Shared fixtures: the ../shared data (skipped cleanly when absent) and small projects."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True)
def _garbage_collected_in_the_gui_thread(request):
    """As in the studio (kpstudio.gui.app): a Qt test collects garbage in the GUI thread only,
    and what it leaves is collected there before the next test's worker threads start."""
    if "qtbot" not in request.fixturenames and "qapp" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("qapp")
    from kpstudio.gui.gc_policy import GuiThreadCollector

    collector = GuiThreadCollector()
    collector.start()
    yield
    collector.stop()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared (datasets and peer files) is not present")
    return SHARED


@pytest.fixture(scope="session")
def openfield(shared_dir) -> Path:
    """The DeepLabCut openfield mouse set in COCO form: annotations.json + images/."""
    path = shared_dir / "datasets" / "dlc_openfield_mouse"
    if not (path / "annotations.json").is_file():
        pytest.skip("dlc_openfield_mouse dataset is not present")
    return path


@pytest.fixture
def demo(tmp_path) -> Path:
    """A small synthetic project: 9 stick-figure images, 6 labeled and 3 to label."""
    from kpstudio.core.demo import build_demo_project

    folder = tmp_path / "demo"
    build_demo_project(folder, n_images=9)
    return folder


@pytest.fixture
def window(qtbot, tmp_path, demo):
    """The studio window, shown, on the demo project (its own settings file)."""
    from PySide6.QtCore import QSettings

    from kpstudio.gui.main_window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    assert win.open_project(demo)
    yield win
    win.close()


TINY_PARAMS = {"width": 8, "decoder": 16}  # a default-architecture model small enough for tests


def tiny_model(seed: int = 0, **params):
    """A small default model whose weights are pushed away from their init, so that a file or
    converter that loaded the wrong weights (or none) would predict visibly differently."""
    import numpy as np

    from kpstudio.ml.models import build_model

    model = build_model("default", 3, 64, **{**TINY_PARAMS, **params})
    rng = np.random.default_rng(seed)
    values = [
        rng.uniform(0.5, 1.5, v.shape) if "moving_variance" in w.path
        else v + rng.normal(0, 0.1, v.shape)
        for w, v in zip(model.weights, model.get_weights())
    ]  # fmt: skip
    model.set_weights([v.astype(np.float32) for v in values])
    return model


@contextlib.contextmanager
def time_limit(seconds: float):
    """Fail with TimeoutError instead of hanging (for reads that used to block forever)."""
    import signal

    def expire(*_):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
