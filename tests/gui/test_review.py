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
