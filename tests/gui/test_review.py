"""Review: accepting the prediction shown turns it into labels, in one undo step."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from kpstudio.core.prediction_files import Prediction  # noqa: E402
from kpstudio.core.project import Project  # noqa: E402
from kpstudio.core.skeleton import Skeleton  # noqa: E402
from kpstudio.gui.canvas import ImageCanvas  # noqa: E402
from kpstudio.gui.document import Document  # noqa: E402
from kpstudio.gui.prediction_overlay import PredictionOverlay  # noqa: E402
from kpstudio.gui.review import ReviewController  # noqa: E402


def test_accepting_a_prediction_a_hair_outside_the_image_keeps_it_inside(qtbot, tmp_path):
    project = Project.create(tmp_path / "p", Skeleton.create(["nose", "tail", "paw"]))
    (image_id,) = project.add_images([(tmp_path / "a.png", 200, 100, "a" * 64)])
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    doc = Document(project, canvas)
    overlay = PredictionOverlay(canvas, lambda: doc.skeleton.keypoints, lambda: image_id)
    review = ReviewController(document=lambda: doc, current_image=lambda: image_id,
                              overlay=overlay, pixels=lambda *a: None,
                              selected_images=list, run_task=None, status=lambda *a: None,
                              dialogs=canvas)  # fmt: skip
    xy = np.array([[200.4, -0.2], [np.nan, np.nan], [30.0, 40.0]])
    overlay.show_prediction(image_id, Prediction(None, xy, np.array([0.9, 0.1, 0.4])))
    assert review.accept() == 2 and overlay.shown is None
    nose = doc.point(image_id, "nose")
    assert (nose.x, nose.y, nose.source) == (200.0, 0.0, "prediction-accepted")
    doc.undo_stack.undo()  # one step takes the whole accepted prediction back
    assert doc.labels(image_id) == []
    project.close()


def _review(qtbot, tmp_path):
    project = Project.create(tmp_path / "p", Skeleton.create(["nose", "tail"]))
    (image_id,) = project.add_images([(tmp_path / "a.png", 200, 100, "a" * 64)])
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    doc = Document(project, canvas)
    overlay = PredictionOverlay(canvas, lambda: doc.skeleton.keypoints, lambda: image_id)
    review = ReviewController(document=lambda: doc, current_image=lambda: image_id,
                              overlay=overlay, pixels=lambda *a: None,
                              selected_images=list, run_task=None, status=lambda *a: None,
                              dialogs=canvas)  # fmt: skip
    return project, image_id, doc, overlay, review


def _obj(points, instance, score=0.9):
    return Prediction(None, np.array(points, float), np.array([0.9, 0.8]), instance, score)


def test_every_object_found_is_drawn_and_accepted_as_its_own_instance(qtbot, tmp_path):
    project, image_id, doc, overlay, review = _review(qtbot, tmp_path)
    objects = [_obj([[20, 20], [40, 30]], 0), _obj([[150, 60], [170, 70]], 1, 0.6)]
    assert overlay.show_objects(image_id, objects, "prediction")
    assert {m.instance for m, _ in overlay._canvas._predictions} == {0, 1}
    assert review.accept() == 4
    assert {(lab.instance, lab.keypoint) for lab in doc.labels(image_id)} == {
        (0, "nose"), (0, "tail"), (1, "nose"), (1, "tail")}
    doc.undo_stack.undo()  # both objects came in one step
    assert doc.labels(image_id) == []
    project.close()


def test_an_object_on_a_labeled_animal_fills_that_instance_only(qtbot, tmp_path):
    project, image_id, doc, overlay, review = _review(qtbot, tmp_path)
    doc.place_point(image_id, "nose", 151.0, 61.0, instance=3)  # the user labeled this one
    objects = [_obj([[150, 60], [170, 70]], 0), _obj([[20, 20], [40, 30]], 1)]
    overlay.show_objects(image_id, objects)
    assert review.accept() == 3  # instance 3's tail, and both points of a new instance
    by_instance = {}
    for lab in doc.labels(image_id):
        by_instance.setdefault(lab.instance, {})[lab.keypoint] = (lab.x, lab.y)
    assert by_instance[3] == {"nose": (151.0, 61.0), "tail": (170.0, 70.0)}
    assert by_instance[4] == {"nose": (20.0, 20.0), "tail": (40.0, 30.0)}
    project.close()


class _HintedModel:
    """A stand-in model that takes hints: it moves the tail by as much as the nose moved."""

    takes_hints = True

    def __init__(self):
        self.calls = []

    def predict_with_hints(self, image, given):
        self.calls.append(dict(given))
        dx = given["nose"][0] - 20.0 if "nose" in given else 0.0
        return Prediction(None, np.array([given.get("nose", (20.0, 20.0)), (40.0 + dx, 30.0)]),
                          np.array([1.0, 0.7]))


def test_a_dragged_suggestion_becomes_a_label_and_the_rest_follow_it(qtbot, tmp_path):
    project, image_id, doc, overlay, review = _review(qtbot, tmp_path)
    review._pixels = lambda *a: np.zeros((100, 200, 3), np.uint8)
    review.predictor = _HintedModel()
    overlay.show_objects(image_id, [_obj([[20, 20], [40, 30]], 0)])
    review.take_suggestion(0, "nose", 30.0, 22.0)  # dragged 10 px to the right
    nose = doc.point(image_id, "nose")
    assert (nose.x, nose.y) == (30.0, 22.0) and doc.point(image_id, "tail") is None
    assert review.predictor.calls == [{"nose": (30.0, 22.0)}]
    tail = overlay.shown_objects[0].xy[1]
    assert tuple(tail) == (50.0, 30.0)  # the tail suggestion followed the correction
    assert review.accept() == 1  # the rest is taken with the next key press
    assert (doc.point(image_id, "tail").x, doc.point(image_id, "tail").y) == (50.0, 30.0)
    doc.undo_stack.undo()
    doc.undo_stack.undo()  # the correction was one step, the acceptance another
    assert doc.labels(image_id) == []
    project.close()


def test_dragging_a_suggestion_on_the_canvas_drops_it_there(qtbot, tmp_path):
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    from kpstudio.gui.canvas import Marker

    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 300)
    canvas.show()
    canvas.set_image(np.zeros((100, 200, 3), np.uint8))
    canvas.set_predictions([Marker(0, "nose", 50.0, 50.0, 2)], [0.9])
    dropped = []
    canvas.suggestion_dropped.connect(lambda *a: dropped.append(a))
    start = canvas.view_pos_for(50.0, 50.0)
    end = canvas.view_pos_for(70.0, 60.0)
    QTest.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     start)
    for t in (0.3, 0.6, 1.0):
        point = QPoint(round(start.x() + t * (end.x() - start.x())),
                       round(start.y() + t * (end.y() - start.y())))
        QTest.mouseMove(canvas.viewport(), point)
    QTest.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier, end)  # fmt: skip
    assert len(dropped) == 1
    instance, name, x, y = dropped[0]
    assert (instance, name) == (0, "nose")
    assert abs(x - 70.0) < 1.5 and abs(y - 60.0) < 1.5
