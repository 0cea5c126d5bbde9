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
