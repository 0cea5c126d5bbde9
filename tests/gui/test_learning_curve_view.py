"""The Review dock's labeling speed line and learning curve plot."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from kpstudio.core.runs import record_run  # noqa: E402


def test_the_review_dock_plots_the_curve_and_says_how_many_more_labels(qtbot, window):
    view = window.review_panel.assist
    assert view.curve_points() == 0 and "not enough runs" in view.forecast.text()
    project = window.doc.project
    for i, n in enumerate((2, 3, 4, 6)):
        record_run(project, f"run-{i}", "default", "finished",
                   {"plan": {"fingerprint": {"images": n}}},
                   metrics={"mean_px": 20 * n**-0.5 + 1, "split": "val"})  # fmt: skip
    window.review_panel.refresh(window.doc)
    assert view.curve_points() == 4
    xs, ys = view.fit_line.getData()
    assert len(xs) > 10 and ys[-1] < ys[0]
    assert "more labels to reach 3 px" in view.forecast.text()


def test_the_speed_line_follows_the_edits(qtbot, window):
    view = window.review_panel.assist
    assert view.speed.text() == "labeling speed: nothing recorded yet"
    doc = window.doc
    done = next(r.id for r in doc.images() if r.status == "done")
    window.show_image(done)
    name = doc.skeleton.keypoints[0]
    point = doc.point(done, name)
    doc.move_point(done, name, point.x + 1, point.y)
    qtbot.waitUntil(lambda: "1 image(s) labeled" in view.speed.text(), timeout=5000)
    assert "1.0 clicks per image" in view.speed.text()
