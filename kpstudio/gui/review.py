"""Predict the current image with a trained run and accept the prediction as labels.

The model loads once per run in a Task (TensorFlow import and build take seconds, off the UI
thread); predicting one image afterwards is a compiled call of a few milliseconds, fine in the
UI thread. Accepting is one undoable command that fills the keypoints not labeled yet.
Predicting every unlabeled image is a Task too; its answers are stored in the project, so an
image shown later gets its stored prediction overlaid without the model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QMessageBox, QWidget

from kpstudio.core.image_reader import read_image
from kpstudio.core.labelset import Visibility
from kpstudio.core.point_state import PointState
from kpstudio.core.prediction_files import Prediction
from kpstudio.core.predictions import load_objects, newest_predicting_run, store_predictions
from kpstudio.core.project import ProjectError
from kpstudio.core.runs import get_run
from kpstudio.gui.document import Document
from kpstudio.gui.prediction_overlay import PredictionOverlay


class ReviewController(QObject):
    def __init__(self, *, document: Callable[[], Document | None],
                 current_image: Callable[[], int | None], overlay: PredictionOverlay,
                 pixels: Callable[[int, Path], np.ndarray | None],
                 selected_images: Callable[[], list[int]],
                 run_task: Callable, status: Callable[[str, int], None],
                 dialogs: QWidget):  # fmt: skip
        """`document()`: the open Document or None; `current_image()`: the image shown;
        `pixels(id, path)`: its decoded pixels if cached; `selected_images()`: the image list's
        selection; `run_task(title, job, on_done)`: kpstudio.gui.tasks.start_task bound to the
        window; `status(message, ms)`: the status line; `dialogs`: parent of message boxes."""
        super().__init__(dialogs)
        self._document, self._current_image = document, current_image
        self.overlay, self._pixels, self._selected_images = overlay, pixels, selected_images
        self._run_task, self._status, self._dialogs = run_task, status, dialogs
        self.predictor = None
        self.run_id: str | None = None
        self._watched: Document | None = None

    def attach(self, doc: Document) -> None:
        """Follow `doc`: answers a worker stored are overlaid when they cover the image shown."""
        self._watched = doc
        doc.predictions_stored.connect(self._on_doc_predictions_stored)

    @property
    def prediction(self) -> tuple[int, Prediction] | None:
        """(image id, Prediction) drawn over the current image, or None."""
        return self.overlay.shown

    def predict_current(self) -> None:
        """Overlay the active model's prediction on the current image (loading it if needed)."""
        doc = self._document()
        if doc is None or self._current_image() is None:
            return
        try:
            run = get_run(doc.project)
        except ValueError as exc:
            QMessageBox.information(self._dialogs, "Predict", str(exc))
            return
        if self.predictor is not None and self.run_id == run.id:
            self._predict_now()
            return
        path = run.model_file(doc.project)

        def load(progress, should_stop):
            from kpstudio.ml.predictor import Predictor

            return Predictor.from_file(path)

        def loaded(predictor):
            self.predictor, self.run_id = predictor, run.id
            self._predict_now()

        self._run_task(f"Loading the model of run {run.id}…", load, loaded)

    @Slot(str, object)
    def use_predictor(self, run_id: str, predictor) -> None:
        """A model loaded elsewhere (Assist's better one) suggests from now on; the image shown
        gets its suggestions again unless every keypoint is labeled."""
        self.predictor, self.run_id = predictor, run_id
        doc, image_id = self._document(), self._current_image()
        if doc is None or image_id is None:
            return
        labeled = {(lab.instance, lab.keypoint) for lab in doc.labels(image_id)}
        if len(labeled) < len(doc.skeleton.keypoints) or self.overlay.shown is not None:
            self._predict_now()

    def _predict_now(self) -> None:
        doc, image_id = self._document(), self._current_image()
        if doc is None or image_id is None:
            return
        try:
            _check_skeleton(self.predictor, doc.skeleton.keypoints, self.run_id)
        except ValueError as exc:
            QMessageBox.warning(self._dialogs, "Predict", str(exc))
            return
        path = doc.project.image_path(doc.image(image_id))
        image = self._pixels(image_id, path)
        if image is None:
            image = read_image(path)
        objects = self.predictor.predict_instances([image])[0]
        self.overlay.show_objects(image_id, objects, f"prediction of run {self.run_id}")

    def on_image_shown(self, image_id: int) -> None:
        """Overlay the stored prediction of an image that has no labels yet."""
        doc = self._document()
        if doc is None or doc.labels(image_id):
            return
        run_id = newest_predicting_run(doc.project, image_id)
        if run_id is not None and self._show_stored(doc, image_id, run_id, "stored prediction"):
            return
        if self.predictor is not None:  # the model is loaded: a compiled call of a few ms
            self._predict_now()

    def predict_unlabeled(self) -> None:
        """Predict every unlabeled image with the active model and mark them 'predicted'."""
        doc = self._document()
        if doc is None:
            return
        ids = [r.id for r in doc.project.images("unlabeled")]
        if not ids:
            QMessageBox.information(self._dialogs, "Predict",
                                    "No unlabeled image is left to predict.")  # fmt: skip
            return
        self.predict_images(ids, f"Predicting {len(ids)} unlabeled images…")

    def predict_selected(self) -> None:
        """Predict the images selected in the image list (Ctrl/Shift-click to pick several)."""
        ids = self._selected_images() if self._document() is not None else []
        if ids:
            self.predict_images(ids, f"Predicting {len(ids)} selected images…")

    def predict_images(self, image_ids: list[int], title: str) -> None:
        """Predict `image_ids` with the active model in a Task (progress, Cancel) and store
        the answers; unlabeled ones become 'predicted'. Cancelled while predicting, it stores
        nothing; once all answers are in, they are stored even if Cancel comes then."""
        doc = self._document()
        project = doc.project
        try:
            run = get_run(project)
        except ProjectError as exc:
            QMessageBox.information(self._dialogs, "Predict", str(exc))
            return
        images = {str(project.image_path(project.image(i))): i for i in image_ids}
        path, names = run.model_file(project), tuple(doc.skeleton.keypoints)
        cached = self.predictor if self.run_id == run.id else None
        stored: list[dict] = []  # the answers the job wrote; read once its thread has ended

        def job(progress, should_stop):
            from kpstudio.ml.predictor import Predictor

            predictor = cached or Predictor.from_file(path)
            _check_skeleton(predictor, names, run.id)
            found, _bad = predictor.predict_files_instances(list(images), batch_size=16,
                                                            progress=progress)  # fmt: skip
            results = {images[objects[0].path]: [(p.xy, p.confidence) for p in objects]
                       for objects in found if objects}  # fmt: skip
            # Stored here, not in the UI thread: 100,000 answers take ~10 s to write.
            doc.write_in_worker(lambda store: store_predictions(store, run.id, results))
            stored.append(results)
            return predictor

        def done(predictor):
            self.predictor, self.run_id = predictor, run.id

        def ended():  # after done, or after a Cancel that came once the answers were stored
            if stored and self._document() is doc:
                doc.worker_stored_predictions(run.id, stored[0])
                self._status(f"predicted {len(stored[0])} images with run {run.id}", 8000)

        self._run_task(title, job, done).ended.connect(ended)

    @Slot(str, object)
    def _on_doc_predictions_stored(self, run_id: str, image_ids: list[int]) -> None:
        current = self._current_image()
        doc = self._watched
        if doc is None or current not in image_ids or doc.labels(current):
            return
        self._show_stored(doc, current, run_id, f"prediction of run {run_id}")

    def _show_stored(self, doc: Document, image_id: int, run_id: str, what: str) -> bool:
        """Overlay every object `run_id` stored for the image; whether there was any."""
        objects = [Prediction(None, xy, conf, i)
                   for i, (xy, conf) in enumerate(load_objects(doc.project, image_id, run_id))]
        if objects:
            self.overlay.show_objects(image_id, objects, what)
        return bool(objects)

    @Slot(int, str, float, float)
    def take_suggestion(self, shown_index: int, keypoint: str, x: float, y: float) -> None:
        """A suggestion clicked (taken where it is) or dragged (taken where dropped): it becomes
        a label of its object, one undo step; with a model that takes hints, the object's other
        suggestions are re-inferred from its labeled points (one correction moves the rest)."""
        doc, shown = self._document(), self.overlay.shown
        objects = list(self.overlay.shown_objects)
        if doc is None or shown is None or not 0 <= shown_index < len(objects):
            return
        image_id = shown[0]
        labeled: dict = {}
        for lab in doc.labels(image_id):
            labeled.setdefault(lab.instance, {})[lab.keypoint] = lab
        instance = _instances_for(objects, labeled, doc.skeleton.keypoints)[shown_index]
        names = doc.skeleton.keypoints
        obj = objects[shown_index]
        sx, sy = obj.xy[names.index(keypoint)]
        if np.hypot(x - sx, y - sy) < 0.5:  # clicked: the suggestion is taken as it is
            taken = PointState(x, y, Visibility.VISIBLE, "prediction-accepted")
            doc.paste_points(image_id, {(instance, keypoint): taken}, f"Take {keypoint}")
        else:  # dragged: a suggestion taken and corrected (the labeling log counts both)
            doc.place_point(image_id, keypoint, x, y, instance)
            doc.tally.accept(image_id, 1)
            doc.tally.correct(image_id, 1)
        xy, conf = obj.xy.copy(), obj.confidence.copy()
        xy[names.index(keypoint)], conf[names.index(keypoint)] = (x, y), 1.0
        if self.predictor is not None and self.predictor.takes_hints:
            given = {lab.keypoint: (lab.x, lab.y) for lab in doc.labels(image_id)
                     if lab.instance == instance and lab.visibility > 0}  # fmt: skip
            path = doc.project.image_path(doc.image(image_id))
            image = self._pixels(image_id, path)
            image = read_image(path) if image is None else image
            again = self.predictor.predict_with_hints(image, given)
            xy, conf = again.xy, again.confidence
        objects[shown_index] = Prediction(obj.path, xy, conf, obj.instance, obj.score)
        self.overlay.show_objects(image_id, objects)

    def accept(self) -> int:
        """Turn the shown prediction into labels for the keypoints not labeled yet: each object
        found fills the labeled instance it lies on (the one whose labeled points are nearest),
        or a new instance; one undo step for all."""
        doc, shown = self._document(), self.overlay.shown
        if doc is None or shown is None or shown[0] != self._current_image():
            return 0
        image_id = shown[0]
        image = doc.image(image_id)
        labeled = {}
        for lab in doc.labels(image_id):
            labeled.setdefault(lab.instance, {})[lab.keypoint] = lab
        targets = _instances_for(self.overlay.shown_objects, labeled, doc.skeleton.keypoints)
        points = {}
        for pred, instance in zip(self.overlay.shown_objects, targets):
            have = set(labeled.get(instance, {}))
            for name, (x, y) in zip(doc.skeleton.keypoints, pred.xy):
                if name not in have and np.isfinite(x) and np.isfinite(y):
                    # A model may answer a hair outside the image; a label must lie inside it.
                    x = min(max(float(x), 0.0), image.width)
                    y = min(max(float(y), 0.0), image.height)
                    points[(instance, name)] = PointState(x, y, Visibility.VISIBLE,
                                                          "prediction-accepted")  # fmt: skip
        self.overlay.clear()
        doc.paste_points(image_id, points, "Accept prediction")
        return len(points)


def _instances_for(objects: list[Prediction], labeled: dict, names) -> list[int]:
    """The label instance each predicted object goes to: the labeled instance whose points lie
    nearest its own (mean distance over the keypoints both have, within the object's size),
    each at most once; otherwise a new instance number."""
    free = sorted(labeled)
    out, next_new = [], max(labeled, default=-1) + 1
    for pred in objects:
        best, best_d = None, np.inf
        span = np.nanmax(pred.xy, axis=0) - np.nanmin(pred.xy, axis=0) if len(pred.xy) else [0]
        reach = max(float(np.nanmax(span)), 1.0)
        for instance in free:
            d = [np.hypot(x - labeled[instance][n].x, y - labeled[instance][n].y)
                 for n, (x, y) in zip(names, pred.xy)
                 if n in labeled[instance] and np.isfinite(labeled[instance][n].x)
                 and np.isfinite(x)]  # fmt: skip
            if d and np.mean(d) < min(best_d, reach):
                best, best_d = instance, float(np.mean(d))
        if best is None:
            best, next_new = next_new, next_new + 1
        elif best in free:
            free.remove(best)
        out.append(best)
    return out


def _check_skeleton(predictor, names, run_id: str) -> None:
    """ValueError when the project's keypoints are no longer those the run was trained on."""
    if tuple(predictor.skeleton.keypoints) != tuple(names):
        raise ValueError(f"The skeleton changed since run {run_id} was trained; train again "
                         "to predict.")  # fmt: skip
