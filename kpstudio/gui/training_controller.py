"""Starts, follows and stops training from the studio; records the run when it ends.

The snapshot is taken in the UI thread (it reads the project), training runs in a
TrainingWorker on its own QThread, and the result is written to the project back in the UI
thread, where the project's SQLite connection lives. Labeling goes on meanwhile.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtWidgets import QMessageBox

from kpstudio.core.project import ProjectError
from kpstudio.core.runs import get_run, list_runs, new_run_id, record_run, set_active_run
from kpstudio.core.training_set import snapshot
from kpstudio.gui.canvas import Marker
from kpstudio.gui.train_panel import TrainPanel
from kpstudio.gui.training_worker import TrainingWorker


class TrainingController(QObject):
    runs_changed = Signal()  # a run was started, finished, stopped or failed

    def __init__(self, window, panel: TrainPanel):
        super().__init__(window)
        self.window, self.panel = window, panel
        self.thread: QThread | None = None
        self.worker: TrainingWorker | None = None
        self.run_id: str | None = None
        self.config = None
        self.overrides: dict = {}  # extra TrainConfig fields (tests use tiny models)
        panel.train_requested.connect(self._on_panel_train_requested)
        panel.stop_requested.connect(self.stop)
        panel.active_run_chosen.connect(self._on_panel_active_run_chosen)

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    def refresh_runs(self) -> None:
        doc = self.window.doc
        if doc is None:
            self.panel.set_runs([])
        else:
            try:
                active = get_run(doc.project).id
            except ProjectError:  # no run with a model yet
                active = None
            self.panel.set_runs(list_runs(doc.project), active)
        self.runs_changed.emit()

    @Slot(str)
    def _on_panel_active_run_chosen(self, run_id: str) -> None:
        doc = self.window.doc
        if doc is None:
            return
        try:
            set_active_run(doc.project, run_id)
        except ProjectError as exc:
            QMessageBox.warning(self.window, "Active model", str(exc))
            return
        self.window.statusBar().showMessage(f"active model: run {run_id}", 5000)
        self.refresh_runs()

    @Slot(dict)
    def _on_panel_train_requested(self, settings: dict) -> None:
        from kpstudio.ml.config import TrainConfig  # light: no TensorFlow import

        doc = self.window.doc
        if doc is None or self.running:
            return
        data = snapshot(doc.project)
        if len(data) == 0:
            QMessageBox.information(self.window, "Train", "Label some images first.")
            return
        preview = None
        if self.window.controller and self.window.controller.image_id is not None:
            preview = str(doc.project.image_path(self.window.controller.image_id))
        self.config = TrainConfig(**settings, preview_image=preview, **self.overrides)
        self.run_id = new_run_id(self.config.arch)
        record_run(doc.project, self.run_id, self.config.arch, "running",
                   self.config.resolved().to_dict())  # fmt: skip
        self.worker = TrainingWorker(data, self.config,
                                     doc.project.folder / "runs" / self.run_id)  # fmt: skip
        self.thread = QThread(self)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.worker.progressed.connect(self._on_worker_progressed)
        self.worker.finished.connect(self._on_worker_finished)
        self.worker.failed.connect(self._on_worker_failed)
        self.worker.finished.connect(self.thread.quit)
        self.worker.failed.connect(self.thread.quit)
        self.thread.finished.connect(self.worker.deleteLater)
        self.panel.set_running(True)
        self.refresh_runs()
        self.thread.start()

    def stop(self) -> None:
        """Cancel within one batch; the best checkpoint so far is kept as the run's model."""
        if self.worker is not None:
            self.worker.request_stop()

    def stop_and_wait(self) -> None:
        """For closing the window: cancel, then join the thread (never leave it running)."""
        if self.running:
            self.stop()
            self.thread.quit()
            self.thread.wait()

    @Slot(dict)
    def _on_worker_progressed(self, event: dict) -> None:
        self.panel.show_progress(event)
        preview = event.get("preview")
        controller = self.window.controller
        if preview and controller is not None and controller.image_id is not None:
            doc = self.window.doc
            if str(doc.project.image_path(controller.image_id)) == preview["image"]:
                names = doc.skeleton.keypoints
                markers = [Marker(0, name, x, y, 2)
                           for name, (x, y) in zip(names, preview["xy"])]  # fmt: skip
                self.window.canvas.set_predictions(markers, preview["confidence"])

    @Slot(object)
    def _on_worker_finished(self, result) -> None:
        doc = self.window.doc
        if doc is not None:
            record_run(doc.project, result.run_id, self.config.arch, result.status, result.config,
                       result.history, result.metrics, result.model_path)  # fmt: skip
        self._done()
        mean = result.metrics.get("mean_px")
        text = f"run {result.run_id} {result.status}"
        if mean is not None:
            text += f": val {mean:.2f} px"
        self.panel.status.setText(text)

    @Slot(str)
    def _on_worker_failed(self, message: str) -> None:
        doc = self.window.doc
        if doc is not None and self.run_id:
            record_run(doc.project, self.run_id, self.config.arch, "failed",
                       self.config.resolved().to_dict(),
                       metrics={"error": message.splitlines()[0]})  # fmt: skip
        self._done()
        box = QMessageBox(QMessageBox.Icon.Warning, "Training failed",
                          message.splitlines()[0], parent=self.window)  # fmt: skip
        box.setDetailedText(message)
        box.open()  # not exec(): the window goes on

    def _done(self) -> None:
        self.panel.set_running(False)
        self.worker = None
        self.refresh_runs()
