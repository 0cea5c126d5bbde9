"""The studio window driven as a user would: clicks, drags, keys, undo, reopen, lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QPoint, QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from kpstudio.core.labelset import Visibility  # noqa: E402
from kpstudio.core.project import Project  # noqa: E402
from kpstudio.gui.main_window import MainWindow  # noqa: E402


def _show(qtbot, win, image_id):
    win.show_image(image_id)
    qtbot.waitUntil(lambda: win.canvas.image_size() is not None
                    and win.controller.image_id == image_id)  # fmt: skip
    qtbot.wait(20)


def _unlabeled(win):
    return [r.id for r in win.doc.images() if r.status == "unlabeled"]


def _click(win, x, y, button=Qt.MouseButton.LeftButton):
    QTest.mouseClick(win.canvas.viewport(), button, Qt.KeyboardModifier.NoModifier,
                     win.canvas.view_pos_for(x, y))  # fmt: skip


def _xy(win, image_id, keypoint):
    state = win.doc.point(image_id, keypoint)
    return None if state is None else (state.x, state.y, state.visibility)


def test_clicks_place_keypoints_in_skeleton_order(qtbot, window):
    image_id = _unlabeled(window)[0]
    _show(qtbot, window, image_id)
    names = window.doc.skeleton.keypoints
    spots = [(50.25 + 20 * i, 60.5 + 15 * i) for i in range(3)]
    for x, y in spots:
        _click(window, x, y)
    tolerance = 0.51 / window.canvas.zoom()  # one screen pixel
    for name, (x, y) in zip(names, spots):
        got = _xy(window, image_id, name)
        assert got is not None and abs(got[0] - x) <= tolerance and abs(got[1] - y) <= tolerance
    assert window.controller.keypoint == names[3]  # advanced to the next unlabeled keypoint
    assert window.doc.image(image_id).status == "partial"


def test_placing_under_zoom_and_pan_lands_on_the_clicked_pixel(qtbot, window):
    image_id = _unlabeled(window)[1]
    _show(qtbot, window, image_id)
    canvas = window.canvas
    canvas.zoom_by(4.0, canvas.viewport().rect().center())
    canvas.horizontalScrollBar().setValue(canvas.horizontalScrollBar().value() + 37)
    canvas.verticalScrollBar().setValue(canvas.verticalScrollBar().value() + 23)
    qtbot.wait(10)
    centre = canvas.mapToScene(canvas.viewport().rect().center())
    target = (round(centre.x(), 1) + 0.3, round(centre.y(), 1) - 0.2)
    _click(window, *target)
    got = _xy(window, image_id, window.doc.skeleton.keypoints[0])
    assert got is not None
    assert abs(got[0] - target[0]) <= 0.51 / canvas.zoom()
    assert abs(got[1] - target[1]) <= 0.51 / canvas.zoom()


def test_drag_moves_as_one_undo_step_and_keys_edit(qtbot, window):
    image_id = _unlabeled(window)[0]
    _show(qtbot, window, image_id)
    name = window.doc.skeleton.keypoints[0]
    _click(window, 100.0, 100.0)
    start = _xy(window, image_id, name)
    viewport = window.canvas.viewport()
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     window.canvas.view_pos_for(start[0], start[1]))  # fmt: skip
    for step in range(1, 6):
        QTest.mouseMove(viewport, window.canvas.view_pos_for(start[0] + 8 * step, start[1] + 5))
    end = window.canvas.view_pos_for(start[0] + 40, start[1] + 5)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
    moved = _xy(window, image_id, name)
    assert abs(moved[0] - (start[0] + 40)) < 1.0 and abs(moved[1] - (start[1] + 5)) < 1.0
    window.doc.undo_stack.undo()  # the whole drag in one step
    assert _xy(window, image_id, name)[:2] == start[:2]
    window.doc.undo_stack.redo()

    window.controller.selected = name
    window.actions_by_name["nudge_right"].trigger()
    window.actions_by_name["nudge_fine_down"].trigger()
    nudged = _xy(window, image_id, name)
    assert nudged[0] == pytest.approx(moved[0] + 1) and nudged[1] == pytest.approx(moved[1] + 0.1)
    window.actions_by_name["visibility"].trigger()
    assert _xy(window, image_id, name)[2] == Visibility.OCCLUDED
    window.actions_by_name["visibility"].trigger()
    assert _xy(window, image_id, name)[2] == Visibility.ABSENT
    window.controller.selected = name
    window.actions_by_name["delete"].trigger()
    assert _xy(window, image_id, name) is None


def test_undo_redo_across_images_restores_exact_coordinates(qtbot, window):
    first, second = _unlabeled(window)[:2]
    name = window.doc.skeleton.keypoints[0]
    _show(qtbot, window, first)
    _click(window, 30.0, 40.0)
    a = _xy(window, first, name)
    _show(qtbot, window, second)
    _click(window, 70.0, 80.0)
    b = _xy(window, second, name)
    stack = window.doc.undo_stack
    stack.undo()
    stack.undo()
    assert _xy(window, first, name) is None and _xy(window, second, name) is None
    stack.redo()
    stack.redo()
    assert _xy(window, first, name) == a and _xy(window, second, name) == b
    assert "Place" in stack.undoText()


def test_reopening_shows_the_same_labels(qtbot, window, demo, tmp_path):
    image_id = _unlabeled(window)[0]
    _show(qtbot, window, image_id)
    _click(window, 123.0, 45.0)
    before = [(lab.keypoint, lab.x, lab.y) for lab in window.doc.labels(image_id)]
    window.close_project()  # nothing to save: it is already on disk
    with Project.open(demo, readonly=True) as project:
        assert [(lab.keypoint, lab.x, lab.y) for lab in project.labels(image_id)] == before
    assert window.open_project(demo)
    assert [(lab.keypoint, lab.x, lab.y) for lab in window.doc.labels(image_id)] == before


def test_skeleton_rename_and_delete_are_undoable(qtbot, window):
    doc = window.doc
    labeled = next(r.id for r in doc.images() if r.status == "done")
    old = doc.skeleton
    before = {lab.keypoint: (lab.x, lab.y) for lab in doc.labels(labeled)}
    from kpstudio.core.skeleton import Skeleton

    kept = [k for k in old.keypoints if k != "head"]
    renamed = ["nape" if k == "neck" else k for k in kept]
    edges = [(a if a != "neck" else "nape", b if b != "neck" else "nape")
             for a, b in old.edges if "head" not in (a, b)]  # fmt: skip
    doc.edit_skeleton(Skeleton.create(renamed, edges, old.flip_pairs), {"neck": "nape"})
    assert "head" not in doc.skeleton.keypoints and "nape" in doc.skeleton.keypoints
    assert window.keypoints.isVisible() or True
    now = {lab.keypoint: (lab.x, lab.y) for lab in doc.labels(labeled)}
    assert now["nape"] == before["neck"] and "head" not in now
    doc.undo_stack.undo()
    assert doc.skeleton.keypoints == old.keypoints
    assert {lab.keypoint: (lab.x, lab.y) for lab in doc.labels(labeled)} == before


def test_a_locked_project_shows_the_lock_message(qtbot, tmp_path, demo, monkeypatch):
    code = textwrap.dedent(f"""
        import sys, time
        from kpstudio.core.project import Project
        p = Project.open({str(demo)!r})
        print("locked", flush=True)
        sys.stdin.readline()
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        shown = []
        monkeypatch.setattr("kpstudio.gui.main_window.QMessageBox.warning",
                            lambda parent, title, text: shown.append(text))  # fmt: skip
        settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
        win = MainWindow(settings)
        qtbot.addWidget(win)
        assert not win.open_project(demo)
        assert shown and f"is open in process {holder.pid}" in shown[0]
    finally:
        holder.stdin.close()
        holder.wait()


def test_clicks_outside_the_image_place_nothing(qtbot, window):
    image_id = _unlabeled(window)[0]
    _show(qtbot, window, image_id)
    window.canvas.zoom_by(0.5, window.canvas.viewport().rect().center())
    width, height = window.canvas.image_size()
    pos = window.canvas.view_pos_for(width + 15, height / 2)
    if window.canvas.viewport().rect().contains(pos):
        QTest.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.NoModifier, pos)  # fmt: skip
    QTest.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, QPoint(2, 2))  # fmt: skip
    assert window.doc.labels(image_id) == []
    assert np.isfinite(window.canvas.zoom())


def test_copy_labels_from_previous_image_is_one_undo_step(qtbot, window):
    images = [r.id for r in window.doc.images()]
    labeled = [r.id for r in window.doc.images() if r.status == "done"]
    target = next(i for i in images if i not in labeled and images.index(i) > 0)
    source = images[images.index(target) - 1]
    _show(qtbot, window, target)
    window.actions_by_name["copy_previous"].trigger()
    copied = {(lab.keypoint, lab.x, lab.y) for lab in window.doc.labels(target)}
    assert copied == {(lab.keypoint, lab.x, lab.y) for lab in window.doc.labels(source)}
    window.doc.undo_stack.undo()
    assert window.doc.labels(target) == []


def test_a_swapped_pair_gets_a_visible_warning(qtbot, window):
    doc = window.doc
    labeled = [r.id for r in doc.images() if r.status == "done"]
    image_id = labeled[0]
    _show(qtbot, window, image_id)
    left = doc.point(image_id, "left_hand")
    right = doc.point(image_id, "right_hand")
    doc.paste_points(image_id, {(0, "left_hand"): right, (0, "right_hand"): left}, "swap")
    warnings = window.canvas._warnings  # what the canvas draws with a red ring + tooltip
    assert {(0, "left_hand"), (0, "right_hand")} <= set(warnings)
    assert "swapped" in warnings[(0, "left_hand")]
    window.doc.undo_stack.undo()
    assert (0, "left_hand") not in window.canvas._warnings


def test_right_click_on_a_point_cycles_its_visibility(qtbot, window):
    image_id = _unlabeled(window)[0]
    _show(qtbot, window, image_id)
    name = window.doc.skeleton.keypoints[0]
    _click(window, 90.0, 90.0)
    x, y, _ = _xy(window, image_id, name)
    _click(window, x, y, Qt.MouseButton.RightButton)
    assert _xy(window, image_id, name)[2] == Visibility.OCCLUDED


def test_runs_list_marks_the_active_model_and_a_double_click_changes_it(qtbot, window):
    from kpstudio.core.runs import get_run, record_run, run_folder

    project = window.doc.project
    metrics = {"mean_px": 3.0, "pck@5.0px": 0.8,
               "pck_curve": {"alpha": [0.0, 0.1, 0.2], "pck": [0.1, 0.7, 0.95]}}  # fmt: skip
    for run_id in ("20260101-000000-default", "20260102-000000-default"):
        record_run(project, run_id, "default", "finished", {}, metrics=metrics,
                   model_path=run_folder(project.folder, run_id) / "model.kpmodel")  # fmt: skip
    record_run(project, "20260103-000000-seed", "seed", "failed", {}, metrics={"error": "boom"})
    window.training.refresh_runs()
    panel = window.train_panel
    assert panel.run_ids() == ["20260103-000000-seed", "20260102-000000-default",
                               "20260101-000000-default"]  # fmt: skip
    assert panel.runs.item(1).text().startswith("★ 20260102")  # newest with a model
    assert window.review_panel.pck_points() == 3

    # A failed run has no model: it cannot be chosen.
    panel.runs.setCurrentRow(0)
    assert not panel.use_run_button.isEnabled()
    panel._choose(panel.runs.item(0))
    assert get_run(project).id == "20260102-000000-default"

    window.train_dock.raise_()
    qtbot.waitUntil(panel.runs.isVisible)
    older = panel.runs.item(2)
    at = panel.runs.visualItemRect(older).center()
    # A view only takes a double click after the first click's press and release.
    QTest.mouseClick(panel.runs.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, at)  # fmt: skip
    assert panel.use_run_button.isEnabled()
    QTest.mouseDClick(panel.runs.viewport(), Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier, at)  # fmt: skip
    assert get_run(project).id == "20260101-000000-default"
    assert panel.runs.item(2).text().startswith("★ 20260101")
    assert "20260101-000000-default" in window.review_panel.status.text()
    # The choice is stored with the project.
    window.close_project()
    with Project.open(project.folder, readonly=True) as again:
        assert get_run(again).id == "20260101-000000-default"


def test_several_images_can_be_selected_for_prediction(qtbot, window):
    panel = window.image_list
    ids = [r.id for r in window.doc.images()]
    _show(qtbot, window, ids[0])
    view = panel.view
    for row in (2, 4):
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.ControlModifier,
                         view.visualRect(panel.proxy.index(row, 0)).center())  # fmt: skip
    selected = panel.selected_ids()
    assert len(selected) == 3 and ids[0] in selected
    assert window.controller.image_id == selected[-1]  # the last Ctrl-click is shown


def _window_on_a_new_project(qtbot, tmp_path) -> MainWindow:
    """The studio on a new project without images or skeleton."""
    Project.create(tmp_path / "new").close()
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    assert win.open_project(tmp_path / "new")
    return win


def test_import_runs_in_a_worker_and_the_window_adopts_its_skeleton(
    qtbot, tmp_path, openfield, monkeypatch
):
    import threading

    from PySide6.QtWidgets import QFileDialog, QInputDialog

    import kpstudio.core.project_transfer as transfer

    win = _window_on_a_new_project(qtbot, tmp_path)
    importing_threads, warnings = [], []
    real_import = transfer.import_labelset

    def recording_import(*args, **kwargs):  # hashing 116 images and writing their labels
        importing_threads.append(threading.current_thread())
        return real_import(*args, **kwargs)

    monkeypatch.setattr(transfer, "import_labelset", recording_import)
    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(lambda *a: ("coco", True)))
    monkeypatch.setattr("kpstudio.gui.file_flows.QMessageBox.warning",
                        lambda parent, title, text: warnings.append(text))  # fmt: skip

    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [], "annotations": [], "categories": [')
    for path in (bad, openfield / "annotations.json"):
        monkeypatch.setattr(QFileDialog, "getOpenFileName",
                            staticmethod(lambda *a, path=path: (str(path), "")))  # fmt: skip
        win.actions_by_name["import"].trigger()
        qtbot.waitUntil(lambda: not win.tasks, timeout=60_000)
        if path == bad:  # refused with the file named; nothing written
            qtbot.waitUntil(lambda: bool(warnings))
            assert str(bad) in warnings[0] and win.doc.images() == []
    qtbot.waitUntil(lambda: win.image_list.model.rowCount() == 116, timeout=10_000)
    assert importing_threads and threading.main_thread() not in importing_threads
    # The window's handle sees the skeleton the worker's import wrote.
    assert win.doc.skeleton.keypoints == ("snout", "leftear", "rightear", "tailbase")
    assert win.doc.project.counts()["labeled_images"] == 116
    win.close()


def test_adding_a_folder_writes_in_the_worker_and_lists_unreadable_files(
    qtbot, tmp_path, monkeypatch
):
    import threading

    import cv2
    from PySide6.QtWidgets import QFileDialog

    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"img{i}.png"), np.full((30, 40, 3), 60 * i, np.uint8))
    (folder / "broken.png").write_bytes(b"not a png")
    win = _window_on_a_new_project(qtbot, tmp_path)
    writing_threads, warnings = [], []
    real_add = Project.add_images

    def recording_add(self, entries, **options):
        writing_threads.append(threading.current_thread())
        return real_add(self, entries, **options)

    monkeypatch.setattr(Project, "add_images", recording_add)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a: str(folder)))
    monkeypatch.setattr("kpstudio.gui.file_flows.QMessageBox.warning",
                        lambda parent, title, text: warnings.append(text))  # fmt: skip
    win.actions_by_name["add_images"].trigger()
    qtbot.waitUntil(lambda: win.image_list.model.rowCount() == 3, timeout=30_000)
    assert writing_threads and threading.main_thread() not in writing_threads
    assert len(warnings) == 1 and "broken.png" in warnings[0] and "added 3 images" in warnings[0]
    qtbot.waitUntil(lambda: win.controller.image_id is not None)  # the first image opens
    win.close()
