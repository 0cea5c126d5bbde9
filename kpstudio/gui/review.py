"""Predict the current image with a trained run and accept the prediction as labels.

The model loads once per run in a Task (TensorFlow import and build take seconds, off the UI
thread); predicting one image afterwards is a compiled call of a few milliseconds, fine in the
UI thread. Accepting is one undoable command that fills the keypoints not labeled yet.
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox

from kpstudio.core.image_reader import read_image
from kpstudio.core.labelset import Visibility
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
        self.prediction = None  # (image id, kpstudio.ml.predictor.Prediction)

    def predict_current(self) -> None:
        """Overlay the newest run's prediction on the current image (loading it if needed)."""
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
        if tuple(self.predictor.skeleton.keypoints) != tuple(win.doc.skeleton.keypoints):
            QMessageBox.warning(win, "Predict", "The skeleton changed since this run was "
                                "trained; train again to predict.")  # fmt: skip
            return
        record = win.doc.image(image_id)
        path = win.doc.project.image_path(record)
        image = win.loader.cached(image_id, path)
        if image is None:
            image = read_image(path)
        pred = self.predictor.predict_array(image)
        self.prediction = (image_id, pred)
        names = win.doc.skeleton.keypoints
        markers = [Marker(0, name, float(x), float(y), 2) for name, (x, y) in zip(names, pred.xy)]
        win.canvas.set_predictions(markers, [float(c) for c in pred.confidence])
        low = min(pred.confidence)
        win.statusBar().showMessage(
            f"prediction of run {self.run_id}: confidence {low:.2f}–{max(pred.confidence):.2f}; "
            "Ctrl+Return accepts it", 8000)  # fmt: skip

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
            if name not in have:
                state = PointState(float(x), float(y), Visibility.VISIBLE, "prediction-accepted")
                points[(0, name)] = state
        win.doc.paste_points(image_id, points, "Accept prediction")
        win.canvas.set_predictions([])
        self.prediction = None
        return len(points)
