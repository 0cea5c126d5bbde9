"""Tasks: a job's progress report after Cancel stops it, without a stop check of its own."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")
from kpstudio.gui.tasks import TaskWorker  # noqa: E402


def test_a_progress_report_after_cancel_stops_the_job(qtbot):
    reached = []

    def job(progress, should_stop):
        progress(1, 3)
        reached.append(1)
        worker.request_stop()  # what the Cancel button does, from the UI thread
        progress(2, 3)
        reached.append(2)
        return "finished"

    worker = TaskWorker(job)
    results = []
    worker.succeeded.connect(results.append)
    with qtbot.waitSignal(worker.cancelled, timeout=1000):
        worker.run()  # in this thread: the signals fire at once
    assert reached == [1] and results == []


def test_the_dialogs_cancel_button_stops_a_running_job(qtbot):
    import threading

    from PySide6.QtWidgets import QPushButton, QWidget

    from kpstudio.gui.tasks import start_task

    window = QWidget()
    window.tasks = []
    qtbot.addWidget(window)
    running, reports, results = threading.Event(), [], []

    def job(progress, should_stop):
        running.set()
        for i in range(10_000):  # minutes of work, unless Cancel stops it
            reports.append(i)
            progress(i, 10_000)
            threading.Event().wait(0.01)
        return "finished"

    task = start_task(window, "Working…", job, results.append)
    qtbot.waitUntil(running.is_set)
    task.dialog.findChild(QPushButton).click()  # the dialog's Cancel, as a user clicks it
    # (Not waitSignal(task.ended): the Task deletes itself right after, under pytest-qt's
    # connection, which crashed PySide.)
    qtbot.waitUntil(lambda: window.tasks == [], timeout=5000)
    assert results == [] and len(reports) < 10_000 and window.tasks == []


def test_a_tasks_thread_is_over_before_its_owner_hears_it_ended(qtbot):
    """The worker thread still deletes its worker after finished(); the Task (and its QThread)
    may only be deleted once that is done. Deleting them meanwhile crashed the worker's
    destructor in that thread (about one run of the video player tests in ten)."""
    import threading
    import time

    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QWidget

    from kpstudio.gui.tasks import start_task

    window = QWidget()
    window.tasks = []
    qtbot.addWidget(window)
    go, seen = threading.Event(), []
    task = start_task(window, "Quick…", lambda progress, should_stop: go.wait(10),
                      lambda _: None)  # fmt: skip
    thread = task.thread
    last_steps_done = threading.Event()

    def slow_last_steps():  # in the thread, after finished(): as a busy machine may make them
        time.sleep(0.3)
        last_steps_done.set()

    thread.finished.connect(slow_last_steps, Qt.ConnectionType.DirectConnection)
    task.ended.connect(lambda: seen.append(last_steps_done.is_set()))
    go.set()
    qtbot.waitUntil(lambda: window.tasks == [] and bool(seen), timeout=10_000)
    assert seen == [True]


WINDOW_DROPPED_WHILE_ITS_TASK_RAN = """
import threading
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QApplication, QWidget
from kpstudio.gui.tasks import start_task

app = QApplication([])


def start():
    window = QWidget()  # dropped by its maker: the task's callbacks hold it last
    window.tasks = []
    start_task(window, "Quick…", lambda progress, should_stop: 1, lambda result: None)
    while window.tasks:
        app.processEvents()
        threading.Event().wait(0.001)


start()
QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)  # the Task's deleteLater
app.processEvents()
print("survived")
"""


def test_a_window_whose_last_reference_is_its_tasks_callback_survives_the_tasks_end(tmp_path):
    """Deleting an ended Task releases its callbacks; when one held the last reference to the
    Task's parent window, Python deleted the window inside the Task's destructor and the window
    deleted the Task again (a segfault, about one run in ten of this file after the studio
    tests). In a child process, so that a crash is a failed test and not a dead suite."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "window_dropped.py"
    script.write_text(WINDOW_DROPPED_WHILE_ITS_TASK_RAN)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(repo)}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and "survived" in done.stdout, done.stderr[-2000:]


def test_an_ended_task_is_deleted(qtbot):
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QWidget
    from shiboken6 import Shiboken

    from kpstudio.gui.tasks import start_task

    window = QWidget()
    window.tasks = []
    qtbot.addWidget(window)
    task = start_task(window, "Quick…", lambda progress, should_stop: 1, lambda _: None)
    qtbot.waitUntil(lambda: window.tasks == [], timeout=10_000)
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert not Shiboken.isValid(task) and window.findChildren(type(task)) == []
