"""Long jobs off the UI thread (scanning a folder, sampling video frames, importing), with a
progress dialog and a Cancel button.

A job is a plain function `job(progress, should_stop) -> result` from the core layer; it runs
in a worker QObject on its own QThread and talks to the window only through queued signals.
Every `progress(done, total)` call is also a cancel point: after Cancel it raises
InterruptedError, so a job that reports progress needs no stop check of its own.
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
            result = self._job(self._progress, self._stop.is_set)
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

    def _progress(self, done: int, total: int) -> None:
        if self._stop.is_set():
            raise InterruptedError
        self.progressed.emit(done, total)


class Task(QObject):
    """One running job with its dialog; keeps itself alive until the thread ends."""

    done = Signal(object)  # the job's result
    error = Signal(str)
    ended = Signal()  # in the UI thread, once the thread is over, just before deleteLater

    def __init__(self, parent: QWidget, title: str, job: Callable, cancellable: bool = True):
        super().__init__(parent)
        self.worker = TaskWorker(job)
        self.thread = QThread(self)
        self.worker.moveToThread(self.thread)
        self.dialog = QProgressDialog(title, "Cancel", 0, 0, parent)
        self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog.setMinimumDuration(300)  # quick jobs never flash a dialog
        if cancellable:
            # Through a slot of this UI-thread object: connected straight to the worker (which
            # lives in its thread), Qt queued the call behind run(), so Cancel never stopped a
            # running job.
            self.dialog.canceled.connect(self._on_dialog_canceled)
        else:
            # A job that cannot stop midway (a model conversion) offers no Cancel that would
            # only drop its result after it is written anyway.
            self.dialog.setCancelButton(None)
        self.thread.started.connect(self.worker.run)
        self.worker.progressed.connect(self._on_worker_progressed)
        self.worker.succeeded.connect(self._on_worker_succeeded)
        self.worker.failed.connect(self._on_worker_failed)
        self.worker.cancelled.connect(self._on_worker_cancelled)
        for signal in (self.worker.succeeded, self.worker.failed, self.worker.cancelled):
            signal.connect(self.thread.quit)
        self.thread.finished.connect(self.worker.deleteLater)
        self.thread.finished.connect(self._on_thread_finished)

    def start(self) -> Task:
        self.thread.start()
        return self

    def cancel_and_wait(self) -> None:
        self.worker.request_stop()
        self.thread.quit()
        self.thread.wait()

    @Slot()
    def _on_thread_finished(self) -> None:
        # finished() comes from the thread before it has quite ended: it then still deletes
        # the worker (deleteLater, in that thread). Deleting this Task, and with it the QThread,
        # meanwhile crashed the worker's destructor in that thread (SIGBUS / SIGSEGV in
        # QObject::~QObject, seen in about one run of the video player tests in ten), so wait
        # for the thread to be over; by now that takes microseconds.
        self.thread.wait()
        # Owners forget the task (ended) before it is deleted: deleting it straight from
        # thread.finished raced with their own queued clean-up, and a window closing later
        # then called cancel_and_wait on a deleted Task (a segfault in PySide's error path).
        self.ended.emit()
        self.dialog.deleteLater()
        # Out of the parent's children first: deleting this Task releases the callbacks
        # connected to it, and when one of them held the last reference to the parent window
        # (a window dropped while its task ran), Python deleted that window in the middle of
        # this Task's destructor, and the window deleted this Task a second time (a segfault
        # in QObject::~QObject, about one run in ten of tests/gui/test_tasks.py). Without a
        # parent the Task is Python's until deleteLater runs.
        self.setParent(None)
        self.deleteLater()

    @Slot()
    def _on_dialog_canceled(self) -> None:
        self.worker.request_stop()

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


def start_task(
    window, title: str, job: Callable, on_done: Callable,
    on_error: Callable[[str], None] | None = None, parent: QWidget | None = None,
    cancellable: bool = True,
) -> Task:  # fmt: skip
    """Run `job` as a Task of `window` (which keeps a list `tasks` to cancel on close); errors
    are shown in a message box, or handed to `on_error`; the result goes to `on_done` in the UI
    thread. `parent` (default `window`) owns the task and its progress dialog: a dialog that
    starts a task passes itself, so the progress shows over it and not behind it."""
    task = Task(parent or window, title, job, cancellable)
    task.done.connect(on_done)
    if on_error is None:
        task.error.connect(lambda message: QMessageBox.warning(window, title, message))
    else:
        task.error.connect(on_error)
    window.tasks.append(task)
    # Forget the task once its thread is done, so closing never touches a deleted object.
    task.ended.connect(lambda: window.tasks.remove(task) if task in window.tasks else None)
    return task.start()
