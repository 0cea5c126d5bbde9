"""Long jobs off the UI thread (scanning a folder, sampling video frames, importing), with a
progress dialog and a Cancel button.

A job is a plain function `job(progress, should_stop) -> result` from the core layer; it runs
in a worker QObject on its own QThread and talks to the window only through queued signals.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QWidget


class TaskWorker(QObject):
    progressed = Signal(int, int)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, job: Callable):
        super().__init__()  # no parent: it moves to its thread
        self._job = job
        self._stop = threading.Event()

    @Slot()
    def run(self) -> None:
        try:
            result = self._job(lambda done, total: self.progressed.emit(done, total),
                               self._stop.is_set)  # fmt: skip
        except InterruptedError:
            self.cancelled.emit()
        except Exception as exc:  # shown to the user, never lost in the thread
            self.failed.emit(str(exc) or type(exc).__name__)
        else:
            if self._stop.is_set():
                self.cancelled.emit()
            else:
                self.succeeded.emit(result)

    def request_stop(self) -> None:
        # Called from the GUI thread directly: a queued slot would wait behind run().
        self._stop.set()


class Task(QObject):
    """One running job with its dialog; keeps itself alive until the thread ends."""

    done = Signal(object)  # the job's result
    error = Signal(str)

    def __init__(self, parent: QWidget, title: str, job: Callable):
        super().__init__(parent)
        self.worker = TaskWorker(job)
        self.thread = QThread(self)
        self.worker.moveToThread(self.thread)
        self.dialog = QProgressDialog(title, "Cancel", 0, 0, parent)
        self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog.setMinimumDuration(300)  # quick jobs never flash a dialog
        self.dialog.canceled.connect(self.worker.request_stop)
        self.thread.started.connect(self.worker.run)
        self.worker.progressed.connect(self._on_worker_progressed)
        self.worker.succeeded.connect(self._on_worker_succeeded)
        self.worker.failed.connect(self._on_worker_failed)
        self.worker.cancelled.connect(self._on_worker_cancelled)
        for signal in (self.worker.succeeded, self.worker.failed, self.worker.cancelled):
            signal.connect(self.thread.quit)
        self.thread.finished.connect(self.worker.deleteLater)
        self.thread.finished.connect(self.deleteLater)

    def start(self) -> Task:
        self.thread.start()
        return self

    def cancel_and_wait(self) -> None:
        self.worker.request_stop()
        self.thread.quit()
        self.thread.wait()

    @Slot(int, int)
    def _on_worker_progressed(self, done: int, total: int) -> None:
        self.dialog.setMaximum(total)
        self.dialog.setValue(done)

    @Slot(object)
    def _on_worker_succeeded(self, result) -> None:
        self.dialog.reset()
        self.done.emit(result)

    @Slot(str)
    def _on_worker_failed(self, message: str) -> None:
        self.dialog.reset()
        self.error.emit(message)

    @Slot()
    def _on_worker_cancelled(self) -> None:
        self.dialog.reset()


def start_task(window, title: str, job: Callable, on_done: Callable) -> Task:
    """Run `job` as a Task of `window` (which keeps a list `tasks` to cancel on close); errors
    are shown in a message box, the result goes to `on_done` in the UI thread."""
    task = Task(window, title, job)
    task.done.connect(on_done)
    task.error.connect(lambda message: QMessageBox.warning(window, title, message))
    window.tasks.append(task)
    # Forget the task once its thread is done, so closing never touches a deleted object.
    task.thread.finished.connect(
        lambda: window.tasks.remove(task) if task in window.tasks else None
    )
    return task.start()
