"""The zooming image view under the canvas: fit, zoom around a point, same-size images."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QPointF  # noqa: E402

from kpstudio.gui.image_view import PIXEL_CENTRE, ImageView  # noqa: E402


@pytest.fixture
def view(qtbot):
    v = ImageView()
    qtbot.addWidget(v)
    v.resize(420, 320)
    v.show()
    qtbot.waitExposed(v)
    v.set_image(np.zeros((100, 200, 3), np.uint8))
    return v


def test_fit_shows_the_whole_image_centred(view):
    assert view.image_size() == (200, 100)
    corner, far = view.view_pos_for(0, 0), view.view_pos_for(200, 100)
    vp = view.viewport()
    assert 0 <= corner.x() and far.x() <= vp.width() and 0 <= corner.y() and far.y() <= vp.height()
    assert abs((corner.x() + far.x()) / 2 - vp.width() / 2) <= 1


def test_zoom_keeps_the_image_point_under_the_anchor(view, qtbot):
    # The wheel's convention: the anchor is the centre of the screen pixel under the cursor.
    anchor = QPointF(view.view_pos_for(150, 30)) + PIXEL_CENTRE
    with qtbot.waitSignal(view.zoom_changed) as zoomed:
        view.zoom_by(3.0, anchor)
    assert zoomed.args[0] == pytest.approx(view.zoom())
    after = view.view_pos_for(150, 30)
    assert abs(after.x() + 0.5 - anchor.x()) <= 1 and abs(after.y() + 0.5 - anchor.y()) <= 1
    zoom = view.zoom()
    view.set_image(np.ones((100, 200, 3), np.uint8))  # the next frame of a video: same place
    assert view.zoom() == zoom
    view.set_image(np.ones((50, 60, 3), np.uint8))  # another size: fitted afresh
    assert view.zoom() != zoom and view.image_size() == (60, 50)
    view.set_image(None)
    assert view.image_size() is None
