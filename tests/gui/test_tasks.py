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
