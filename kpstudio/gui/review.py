"""Predict the current image with a trained run and accept the prediction as labels.

The model loads once per run in a Task (TensorFlow import and build take seconds, off the UI
thread); predicting one image afterwards is a compiled call of a few milliseconds, fine in the
UI thread. Accepting is one undoable command that fills the keypoints not labeled yet.
Predicting every unlabeled image is a Task too; its answers are stored in the project, so an
image shown later gets its stored prediction overlaid without the model.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox

from kpstudio.core.image_reader import read_image
from kpstudio.core.labelset import Visibility
from kpstudio.core.prediction_files import Prediction
from kpstudio.core.predictions import load_prediction, store_predictions
from kpstudio.core.project import ProjectError
from kpstudio.core.runs import get_run
from kpstudio.gui.canvas import Marker
from kpstudio.gui.document import PointState
from kpstudio.gui.tasks import start_task


class ReviewController(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.predictor = None
        self.run_id: str | None = None
        self.prediction = None  # (image id, kpstudio.core.prediction_files.Prediction)

    def predict_current(self) -> None:
        """Overlay the active model's prediction on the current image (loading it if needed)."""
        win = self.window
        if win.doc is None or win.controller is None or win.controller.image_id is None:
            return
        try:
            run = get_run(win.doc.project)
        except ValueError as exc:
            QMessageBox.information(win, "Predict", str(exc))
            return
        if self.predictor is not None and self.run_id == run.id:
            self._predict_now()
            return
        path = run.model_file(win.doc.project)

        def load(progress, should_stop):
            from kpstudio.ml.predictor import Predictor

            return Predictor.from_file(path)

        def loaded(predictor):
            self.predictor, self.run_id = predictor, run.id
            self._predict_now()

        start_task(win, f"Loading the model of run {run.id}…", load, loaded)

    def _predict_now(self) -> None:
        win = self.window
        image_id = win.controller.image_id
        if image_id is None:
            return
        try:
            _check_skeleton(self.predictor, win.doc.skeleton.keypoints, self.run_id)
        except ValueError as exc:
            QMessageBox.warning(win, "Predict", str(exc))
            return
        record = win.doc.image(image_id)
        path = win.doc.project.image_path(record)
        image = win.loader.cached(image_id, path)
        if image is None:
            image = read_image(path)
        pred = self.predictor.predict_array(image)
        self._show(image_id, pred, f"prediction of run {self.run_id}")

    def _show(self, image_id: int, pred, what: str) -> None:
        win = self.window
        self.prediction = (image_id, pred)
        names = win.doc.skeleton.keypoints
        markers, confs = [], []
        for name, (x, y), c in zip(names, pred.xy, pred.confidence):
            if np.isfinite(x) and np.isfinite(y):
                markers.append(Marker(0, name, float(x), float(y), 2))
                confs.append(float(c))
        win.canvas.set_predictions(markers, confs)
        if confs:
            win.statusBar().showMessage(
                f"{what}: confidence {min(confs):.2f}–{max(confs):.2f}; Ctrl+Return accepts it",
                8000,
            )

    def on_image_shown(self, image_id: int) -> None:
        """Overlay the stored prediction of an image that has no labels yet."""
        win = self.window
        if win.doc is None or win.doc.labels(image_id):
            return
        stored = load_prediction(win.doc.project, image_id)
        if stored is not None:
            pred = Prediction(None, *stored)
            self._show(image_id, pred, "stored prediction")

    def predict_unlabeled(self) -> None:
        """Predict every unlabeled image with the active model and mark them 'predicted'."""
        win = self.window
        if win.doc is None:
            return
        ids = [r.id for r in win.doc.project.images("unlabeled")]
        if not ids:
            QMessageBox.information(win, "Predict", "No unlabeled image is left to predict.")
            return
        self.predict_images(ids, f"Predicting {len(ids)} unlabeled images…")

    def predict_selected(self) -> None:
        """Predict the images selected in the image list (Ctrl/Shift-click to pick several)."""
        win = self.window
        if win.doc is None or win.image_list is None:
            return
        ids = win.image_list.selected_ids()
        if ids:
            self.predict_images(ids, f"Predicting {len(ids)} selected images…")

    def predict_images(self, image_ids: list[int], title: str) -> None:
        """Predict `image_ids` with the active model in a Task (progress, Cancel) and store
        the answers; unlabeled ones become 'predicted'. Cancelled while predicting, it stores
        nothing; once all answers are in, they are stored even if Cancel comes then."""
        win = self.window
        project = win.doc.project
        try:
            run = get_run(project)
        except ProjectError as exc:
            QMessageBox.information(win, "Predict", str(exc))
            return
        images = {str(project.image_path(project.image(i))): i for i in image_ids}
        path, names = run.model_file(project), tuple(win.doc.skeleton.keypoints)
        cached = self.predictor if self.run_id == run.id else None
        stored: list[dict] = []  # the answers the job wrote; read once its thread has ended

        def job(progress, should_stop):
            from kpstudio.ml.predictor import Predictor

            predictor = cached or Predictor.from_file(path)
            _check_skeleton(predictor, names, run.id)
            preds, _bad = predictor.predict_files(list(images), batch_size=16, progress=progress)
            results = {images[p.path]: (p.xy, p.confidence) for p in preds}
            # Stored here, not in the UI thread: 100,000 answers take ~10 s to write.
            with project.worker_handle() as store:
                store_predictions(store, run.id, results)
            stored.append(results)
            return predictor

        def done(predictor):
            self.predictor, self.run_id = predictor, run.id

        def ended():  # after done, or after a Cancel that came once the answers were stored
            if not stored or win.doc is None or win.doc.project is not project:
                return
            results = stored[0]
            if len(results) <= 1000:  # row by row keeps the list's selection and scroll
                for image_id in results:
                    win.image_list.model.refresh_image(image_id)
            else:
                win.doc.images_changed.emit()
            win.review_panel.refresh(win.doc)
            current = win.controller.image_id if win.controller else None
            if current in results:
                xy, confidence = results[current]
                pred = Prediction(None, xy, confidence)
                self._show(current, pred, f"prediction of run {run.id}")
            win.statusBar().showMessage(f"predicted {len(results)} images with run {run.id}", 8000)

        start_task(win, title, job, done).ended.connect(ended)

    def accept(self) -> int:
        """Turn the shown prediction into labels for the keypoints not labeled yet."""
        win = self.window
        if self.prediction is None or win.controller is None:
            return 0
        image_id, pred = self.prediction
        if image_id != win.controller.image_id:
            return 0
        have = set(win.controller.states())
        points = {}
        for name, (x, y) in zip(win.doc.skeleton.keypoints, pred.xy):
            if name not in have and np.isfinite(x) and np.isfinite(y):
                state = PointState(float(x), float(y), Visibility.VISIBLE, "prediction-accepted")
                points[(0, name)] = state
        win.doc.paste_points(image_id, points, "Accept prediction")
        win.canvas.set_predictions([])
        self.prediction = None
        return len(points)


def _check_skeleton(predictor, names, run_id: str) -> None:
    """ValueError when the project's keypoints are no longer those the run was trained on."""
    if tuple(predictor.skeleton.keypoints) != tuple(names):
        raise ValueError(f"The skeleton changed since run {run_id} was trained; train again "
                         "to predict.")  # fmt: skip
