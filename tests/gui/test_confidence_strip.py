"""The confidence strip: plots what it is given (gaps where not predicted), the cursor follows
the frame, a click reports the frame under it."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPointF, Qt  # noqa: E402

from kpstudio.gui.confidence_strip import ConfidenceStrip  # noqa: E402


@pytest.fixture
def strip(qtbot):
    widget = ConfidenceStrip()
    qtbot.addWidget(widget)
    widget.resize(600, 90)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_length(200)
    return widget


def test_a_click_reports_the_frame_under_it(qtbot, strip):
    strip.set_confidence(np.linspace(0.2, 0.9, 150))
    box = strip.getPlotItem().getViewBox()
    for frame in (0, 77, 199):
        at = strip.mapFromScene(box.mapViewToScene(QPointF(frame, 0.5)))
        with qtbot.waitSignal(strip.frame_clicked, timeout=2000) as blocker:
            qtbot.mouseClick(strip.viewport(), Qt.MouseButton.LeftButton, pos=at)
        assert blocker.args == [frame]


def test_it_plots_the_values_with_gaps_and_a_cursor(strip):
    values = np.array([0.5, np.nan, 0.7, 0.8])
    strip.set_confidence(values)
    np.testing.assert_array_equal(strip.confidence(), values)
    strip.set_current(3)
    assert strip.cursor.value() == 3
    strip.set_confidence(None)
    assert len(strip.confidence()) == 0
