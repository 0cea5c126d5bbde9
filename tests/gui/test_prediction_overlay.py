"""The prediction overlay: the one owner of the prediction drawn over the image shown."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from kpstudio.core.prediction_files import Prediction  # noqa: E402
from kpstudio.gui.canvas import ImageCanvas  # noqa: E402
from kpstudio.gui.prediction_overlay import PredictionOverlay  # noqa: E402


@pytest.fixture
def setup(qtbot):
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.set_image(np.zeros((100, 200, 3), np.uint8))
    shown, messages = {"id": 7}, []
    overlay = PredictionOverlay(canvas, lambda: ("nose", "tail", "paw"), lambda: shown["id"],
                                lambda text, ms: messages.append(text))  # fmt: skip
    return canvas, overlay, shown, messages


def _pred():
    return Prediction(None, np.array([[10.0, 20.0], [np.nan, np.nan], [30.0, 40.0]]),
                      np.array([0.9, 0.1, 0.4]))  # fmt: skip


def test_a_prediction_of_the_image_shown_is_drawn_and_remembered(setup):
    canvas, overlay, _, messages = setup
    assert overlay.show_prediction(7, _pred(), "prediction of run r1")
    drawn = [(m.keypoint, m.x, m.y, c) for m, c in canvas._predictions]
    assert drawn == [("nose", 10.0, 20.0, 0.9), ("paw", 30.0, 40.0, 0.4)]  # NaN left out
    assert overlay.shown[0] == 7
    assert messages == ["prediction of run r1: confidence 0.40–0.90; Ctrl+Return accepts it"]


def test_a_prediction_of_another_image_is_not_drawn(setup):
    canvas, overlay, shown, messages = setup
    overlay.show_prediction(7, _pred(), "")  # a training preview: drawn without a message
    assert messages == [] and len(canvas._predictions) == 2
    shown["id"] = 8  # the user moved on before the answer came
    assert not overlay.show_prediction(7, _pred(), "late")
    assert overlay.shown[0] == 7 and messages == []
    overlay.clear()
    assert canvas._predictions == [] and overlay.shown is None
