"""Garbage with Qt objects in it is collected in the GUI thread, never in a worker thread that
happens to allocate (a training thread deadlocked destroying a closed window's widgets)."""

from __future__ import annotations

import gc
import threading

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QObject  # noqa: E402

from kpstudio.gui.gc_policy import GuiThreadCollector  # noqa: E402


class Node:
    """A cycle holding a QObject; records the thread that finally destroys it."""

    def __init__(self, seen: list):
        self.me, self.widget, self.seen = self, QObject(), seen

    def __del__(self):
        self.seen.append(threading.current_thread())


def _garbage_then_a_busy_worker(seen: list) -> list:
    gc.collect()
    Node(seen)  # unreachable at once: only the cyclic collector can free it
    kept: list = []  # what the worker allocates stays alive, as a training set would
    worker = threading.Thread(target=lambda: kept.append([{} for _ in range(20_000)]))
    worker.start()
    worker.join()
    return kept


def test_a_worker_that_allocates_does_not_collect_qt_garbage(qtbot):
    # tests/conftest.py starts a GuiThreadCollector for every Qt test, as the studio does.
    assert not gc.isenabled()
    seen: list = []
    kept = _garbage_then_a_busy_worker(seen)  # noqa: F841 - alive until the tick
    assert seen == []  # the worker passed the threshold, but did not collect
    qtbot.waitUntil(lambda: bool(seen), timeout=5_000)  # the GUI thread's next tick does
    assert seen == [threading.main_thread()]


def test_without_the_collector_the_worker_would_have_collected(qtbot):
    # The hazard itself, so the test above cannot pass for the wrong reason.
    collector = GuiThreadCollector()
    collector.stop()  # CPython's own collection, as without the policy
    seen: list = []
    try:
        _garbage_then_a_busy_worker(seen)
        assert seen and seen[0] is not threading.main_thread()
    finally:
        gc.disable()  # back to the fixture's policy for the rest of this test
