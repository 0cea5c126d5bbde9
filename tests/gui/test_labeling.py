"""The labeling controller: one redraw and one run of the sanity hints per edit, a drag written
once on release, and hints the user can read on the marker."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

import kpstudio.gui.labeling as labeling  # noqa: E402


def _show(qtbot, win, status):
    image_id = next(r.id for r in win.doc.images() if r.status == status)
    win.show_image(image_id)
    qtbot.waitUntil(lambda: win.canvas.image_size() is not None
                    and win.controller.image_id == image_id)  # fmt: skip
    qtbot.wait(20)
    return image_id


class _Counts:
    """How often the canvas redrew the labels, the hints ran and the store committed."""

    def __init__(self, win, monkeypatch):
        self.redraws = self.hints = 0
        self.commits: list[str] = []
        draw, hints = win.canvas._rebuild_overlay, labeling.sanity_warnings

        def counted_draw(*args):
            self.redraws += 1
            draw(*args)

        def counted_hints(*args):
            self.hints += 1
            return hints(*args)

        monkeypatch.setattr(win.canvas, "_rebuild_overlay", counted_draw)
        monkeypatch.setattr(labeling, "sanity_warnings", counted_hints)
        win.doc.project._conn.set_trace_callback(
            lambda sql: self.commits.append(sql) if sql.strip().upper() == "COMMIT" else None
        )


def test_a_click_redraws_once_runs_the_hints_once_and_commits_once(qtbot, window, monkeypatch):
    image_id = _show(qtbot, window, "unlabeled")
    counts = _Counts(window, monkeypatch)
    at = window.canvas.view_pos_for(60.0, 70.0)
    QTest.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, at)  # fmt: skip
    assert (counts.redraws, counts.hints, len(counts.commits)) == (1, 1, 1)
    first = window.doc.skeleton.keypoints[0]
    assert window.doc.point(image_id, first).x == pytest.approx(60.0, abs=0.5)
    assert window.canvas._selected == (0, first)  # the one redraw already shows the selection
    assert window.controller.keypoint == window.doc.skeleton.keypoints[1]


def test_a_drag_moves_live_and_is_written_once_on_release(qtbot, window, monkeypatch):
    image_id = _show(qtbot, window, "done")
    name = "head"
    start = window.doc.point(image_id, name)
    counts = _Counts(window, monkeypatch)
    viewport = window.canvas.viewport()
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     window.canvas.view_pos_for(start.x, start.y))  # fmt: skip
    for step in range(1, 21):
        QTest.mouseMove(viewport, window.canvas.view_pos_for(start.x + step, start.y + 3))
    live = next(m for m in window.canvas._markers if m.keypoint == name)
    assert live.x == pytest.approx(start.x + 20, abs=0.5)  # the canvas follows the mouse
    assert window.doc.point(image_id, name) == start  # ... and nothing is written yet
    assert counts.commits == [] and counts.hints == 0  # the live moves run no hints
    counts.redraws = 0
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       window.canvas.view_pos_for(start.x + 20, start.y + 3))  # fmt: skip
    moved = window.doc.point(image_id, name)
    assert (moved.x, moved.y) == pytest.approx((start.x + 20, start.y + 3), abs=0.5)
    assert (len(counts.commits), counts.redraws, counts.hints) == (1, 1, 1)
    window.doc.undo_stack.undo()
    assert window.doc.point(image_id, name) == start


def test_a_collapsed_bone_is_named_on_the_markers_tooltip(qtbot, window):
    image_id = _show(qtbot, window, "done")
    neck = window.doc.point(image_id, "neck")
    window.doc.move_point(image_id, "head", neck.x + 0.5, neck.y)  # head clicked onto the neck
    tips = {item.toolTip() for item in window.canvas._overlay if item.toolTip()}
    head_tip = next(t for t in tips if t.startswith("head"))
    assert head_tip.startswith("head\n⚠ head–neck is only 0.")
    assert head_tip.endswith("× its usual length")
    assert any(t.startswith("neck\n⚠ head–neck is only") for t in tips)
    window.doc.undo_stack.undo()
    assert not any("⚠" in item.toolTip() for item in window.canvas._overlay)


def test_o_starts_another_object_whose_clicks_become_its_keypoints(qtbot, window):
    image_id = _show(qtbot, window, "unlabeled")
    names = window.doc.skeleton.keypoints

    def click(x, y):
        QTest.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.NoModifier, window.canvas.view_pos_for(x, y))

    click(60.0, 70.0)
    QTest.keyClick(window, Qt.Key.Key_O)
    assert window.controller.instance == 1 and window.controller.keypoint == names[0]
    QTest.keyClick(window, Qt.Key.Key_O)  # nothing placed on the new object yet: stays
    assert window.controller.instance == 1
    click(200.0, 120.0)
    click(210.0, 130.0)
    labels = {(lab.instance, lab.keypoint): (lab.x, lab.y) for lab in window.doc.labels(image_id)}
    assert set(labels) == {(0, names[0]), (1, names[0]), (1, names[1])}
    assert labels[(1, names[0])][0] == pytest.approx(200.0, abs=0.5)
    window.step_image(1)  # another image starts on its first object
    qtbot.waitUntil(lambda: window.controller.image_id != image_id)
    assert window.controller.instance == 0



def test_the_keypoint_list_follows_the_object_being_labeled(qtbot, window):
    """Two animals on an image: the list says which one its marks are of, a click on another
    animal's marker switches to it, and the arrows (or Shift+O) step between them."""
    _show(qtbot, window, "unlabeled")
    names = window.doc.skeleton.keypoints
    panel, controller = window.keypoints, window.controller

    def click(x, y):
        QTest.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.NoModifier, window.canvas.view_pos_for(x, y))

    click(60.0, 70.0)
    click(70.0, 80.0)  # the first animal: two points
    assert panel.object_row.isHidden()  # one object: nothing to say
    assert [panel.mark(n) for n in names[:3]] == ["●", "●", "○"]
    QTest.keyClick(window, Qt.Key.Key_O)
    assert not panel.object_row.isHidden() and panel.object_label.text() == "Object 2 of 2"
    assert panel.mark(names[0]) == "○" and panel.current() == names[0]  # the new one's marks
    click(200.0, 120.0)  # the second animal: one point
    assert [panel.mark(n) for n in names[:2]] == ["●", "○"] and panel.current() == names[1]

    # A click on the first animal's marker: the list shows that animal.
    pos = window.canvas.view_pos_for(70.0, 80.0)
    QTest.mousePress(window.canvas.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, pos)  # fmt: skip
    QTest.mouseRelease(window.canvas.viewport(), Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier, pos)  # fmt: skip
    assert controller.instance == 0 and controller.selected == names[1]
    assert panel.object_label.text() == "Object 1 of 2"
    assert [panel.mark(n) for n in names[:3]] == ["●", "●", "○"]

    panel.next_object.click()  # ▶: the second animal, from its first keypoint not labeled
    assert controller.instance == 1 and panel.object_label.text() == "Object 2 of 2"
    assert panel.current() == names[1]
    QTest.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier)  # cycles back
    assert controller.instance == 0 and panel.current() == names[2]
    panel.previous_object.click()
    assert controller.instance == 1

def test_time_and_clicks_are_recorded_per_image_with_idle_gaps_capped(qtbot, window):
    from kpstudio.core.labeling_log import IDLE_CAP_S, image_counts

    clock = [100.0]
    window.doc.tally._clock = lambda: clock[0]
    first = _show(qtbot, window, "unlabeled")
    clock[0] += 12.0
    at = window.canvas.view_pos_for(60.0, 70.0)
    QTest.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, at)  # fmt: skip
    assert image_counts(window.doc.project, first).clicks == 1  # written with the click
    clock[0] += 600.0  # the user went away
    second = next(r.id for r in window.doc.images() if r.id != first)
    window.show_image(second)  # leaving the image writes its time
    counts = image_counts(window.doc.project, first)
    assert counts.seconds == pytest.approx(12.0 + IDLE_CAP_S, abs=0.01)
    assert counts.clicks == 1
    clock[0] += 5.0
    folder = window.doc.project.folder
    window.close_project()  # closing writes the time of the image shown
    from kpstudio.core.project import Project

    with Project.open(folder, readonly=True) as project:
        assert image_counts(project, second).seconds == pytest.approx(5.0, abs=0.01)
