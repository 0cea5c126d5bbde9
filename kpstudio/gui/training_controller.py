"""Starts, follows and stops training from the studio.

The snapshot is taken and the run started (kpstudio.core.runs.start_run) in the UI thread, which
reads the project; training runs in a TrainingWorker on its own QThread, which also writes the
run's end; this controller shows progress, the preview and the runs. Labeling goes on meanwhile.

It receives what it uses, not the window: the open Document (or None), the current image id,
a status-message sink, a preview-overlay sink, and the `train` function (None: the real one,
loaded in the worker thread; tests pass a fake).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtWidgets import QMessageBox

from kpstudio.core.prediction_files import Prediction
from kpstudio.core.project import ProjectError
from kpstudio.core.runs import get_run, list_runs, run_folder, set_active_run, start_run
from kpstudio.core.training_set import snapshot
from kpstudio.gui.train_panel import TrainPanel
from kpstudio.gui.training_worker import TrainingWorker
from kpstudio.ml.events import EpochEnded, Preview  # TensorFlow-free
from kpstudio.ml.planning import planned_config  # TensorFlow-free

# Assist trains this long at most (Stop ends it sooner): a labeling session, not a night.
ASSIST_MINUTES = 120.0


class TrainingController(QObject):
    runs_changed = Signal()  # a run was started, finished, stopped or failed
    model_published = Signal(str, object)  # (run id, Predictor): Assist made a better model

    def __init__(
        self, panel: TrainPanel, *, document: Callable[[], object | None],
        current_image: Callable[[], int | None], show_status: Callable[[str, int], None],
        show_preview: Callable[[int, Prediction], object],
        train: Callable | None = None, parent: QObject | None = None,
    ):  # fmt: skip
        """`document()`: the open kpstudio.gui.document.Document or None; `current_image()`:
        the image shown, or None; `show_status(text, ms)`: a transient message;
        `show_preview(image_id, prediction)`: draw the model's prediction over that image
        (kpstudio.gui.prediction_overlay.PredictionOverlay.show_prediction);
        `train`: kpstudio.ml.train.train or a function of its signature."""
        super().__init__(parent)
        self.panel = panel
        self._document, self._current_image = document, current_image
        self._show_status, self._show_preview = show_status, show_preview
        self.train_function = train  # None: kpstudio.ml.train.train
        self.thread: QThread | None = None
        self.worker: TrainingWorker | None = None
        self.run_id: str | None = None
        self.config = None
        self.overrides: dict = {}  # extra TrainConfig fields (tests use tiny models)
        panel.plan_requested.connect(self._on_panel_plan_requested)
        panel.train_requested.connect(self._on_panel_train_requested)
        panel.stop_requested.connect(self.stop)
        panel.active_run_chosen.connect(self._on_panel_active_run_chosen)
        panel.assist_requested.connect(self._on_panel_assist_requested)

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    def refresh_runs(self) -> None:
        doc = self._document()
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
        doc = self._document()
        if doc is None:
            return
        try:
            set_active_run(doc.project, run_id)
        except ProjectError as exc:
            QMessageBox.warning(self.panel.window(), "Active model", str(exc))
            return
        self._show_status(f"active model: run {run_id}", 5000)
        self.refresh_runs()

    def _planned(self, doc, settings: dict, **extra):
        """(snapshot of the labels, the config its plan completes), or None without labels.
        The plan comes from the snapshot's fingerprint (cheap), so the dock shows the settings
        a run trains with; train() keeps a config that carries its plan."""
        from kpstudio.ml.config import TrainConfig  # light: no TensorFlow import

        data = snapshot(doc.project)
        if len(data) == 0:
            return None
        fields = {**settings, **extra, **self.overrides}
        fields["params"] = {**extra.get("params", {}), **self.overrides.get("params", {})}
        config = TrainConfig(**fields)
        return data, planned_config(config, data.fingerprint())

    @Slot(dict)
    def _on_panel_assist_requested(self, settings: dict) -> None:
        """Assist: a default model with hints, started from the active model when it is one
        (else fresh), trained until Stop on the labels as they grow."""
        doc = self._document()
        if doc is None or self.running:
            return
        from kpstudio.ml.config import TrainConfig

        settings = {**settings, "arch": "default", "max_minutes": ASSIST_MINUTES}
        extra = {"params": {"hints": True}, "patience": 10**9}  # never stops early: labels grow
        warm = self._assist_start(doc)
        if warm is not None:
            # The active model's own settings (its scale, crops, stride), its weights.
            config = TrainConfig.from_dict({**warm.config, "max_minutes": ASSIST_MINUTES,
                                            "epochs": None, "patience": 10**9,
                                            "warm_start": str(warm.model_file(doc.project))})
            self._start(doc, None, config, assist=True)
        else:
            self._on_panel_train_requested(settings, assist=True, **extra)

    def _assist_start(self, doc):
        """The active run, if Assist can start from its model (a default model with hints on
        today's keypoints); else None."""
        try:
            run = get_run(doc.project)
        except ProjectError:
            return None
        params = run.config.get("params", {})
        same = run.config.get("plan") and run.config.get("arch") == "default"
        keypoints = run.config.get("plan", {}).get("fingerprint", {}).get("keypoints")
        if not same or not params.get("hints") or run.model_file(doc.project) is None:
            return None
        return run if list(keypoints or []) == list(doc.skeleton.keypoints) else None

    @Slot(dict)
    def _on_panel_train_requested(self, settings: dict, assist: bool = False, **extra) -> None:
        doc = self._document()
        if doc is None or self.running:
            return
        self._start(doc, settings, None, assist, **extra)

    def _start(self, doc, settings: dict | None, config, assist: bool, **extra) -> None:
        image_id = self._current_image()
        preview = str(doc.project.image_path(image_id)) if image_id is not None else None
        if config is None:
            planned = self._planned(doc, settings, preview_image=preview, **extra)
        else:
            data = snapshot(doc.project)
            planned = (data, planned_config(config, data.fingerprint())) if len(data) else None
        if planned is None:
            QMessageBox.information(self.panel.window(), "Train", "Label some images first.")
            return
        data, self.config = planned
        self.panel.show_plan(self.config.plan["sentences"])
        run = start_run(doc.project, self.config.arch, self.config.resolved().to_dict())
        self.run_id = run.id
        run_dir = run_folder(doc.project.folder, run.id)
        self.worker = TrainingWorker(
            self.train_function, data, self.config, run.id, run_dir, doc.project, assist
        )
        self.worker.published.connect(self._on_worker_published)
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

    @Slot(str, object)
    def _on_worker_published(self, run_id: str, predictor) -> None:
        self._show_status(f"Assist: a better model (run {run_id}) now suggests", 4000)
        self.model_published.emit(run_id, predictor)

    @Slot(dict)
    def _on_panel_plan_requested(self, settings: dict) -> None:
        doc = self._document()
        if doc is None:
            return
        planned = self._planned(doc, settings)
        if planned is None:
            self.panel.show_plan(["Label some images first: the plan comes from the labels."])
        else:
            self.panel.show_plan(planned[1].plan["sentences"])

    def stop(self) -> None:
        """Cancel within one batch; the best checkpoint so far is kept as the run's model."""
        if self.worker is not None:
            self.worker.request_stop()

    def stop_and_wait(self) -> None:
        """For closing the project or the window: cancel, then join the thread (never leave it
        running). The worker has recorded the run's end by the time this returns."""
        if self.running:
            self.stop()
            self.thread.quit()
            self.thread.wait()

    @Slot(object)
    def _on_worker_progressed(self, event) -> None:
        self.panel.show_progress(event)
        if isinstance(event, EpochEnded) and event.preview is not None:
            self._preview(event.preview)

    def _preview(self, preview: Preview) -> None:
        doc, image_id = self._document(), self._current_image()
        if doc is None or image_id is None:
            return
        if str(doc.project.image_path(image_id)) == preview.image:
            xy, confidence = np.asarray(preview.xy, float), np.asarray(preview.confidence, float)
            self._show_preview(image_id, Prediction(preview.image, xy, confidence))

    # The run's end is already recorded by the worker: these only update what is shown (they
    # may arrive after the project was closed).
    @Slot(object)
    def _on_worker_finished(self, result) -> None:
        self._done()
        mean = result.metrics.get("mean_px")
        text = f"run {result.run_id} {result.status}"
        if mean is not None:
            text += f": val {mean:.2f} px"
        self.panel.status.setText(text)

    @Slot(str)
    def _on_worker_failed(self, message: str) -> None:
        self._done()
        box = QMessageBox(QMessageBox.Icon.Warning, "Training failed",
                          message.splitlines()[0], parent=self.panel.window())  # fmt: skip
        box.setDetailedText(message)
        box.open()  # not exec(): the window goes on

    def _done(self) -> None:
        self.panel.set_running(False)
        self.worker = None
        self.refresh_runs()
