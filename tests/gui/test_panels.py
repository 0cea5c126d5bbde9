"""The studio's side panels: image list, keypoint list and skeleton editor, on a real project."""

from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QObject, Qt, Signal  # noqa: E402
from PySide6.QtWidgets import QDialog  # noqa: E402

from kpstudio.core.project import ImageRecord, Project  # noqa: E402
from kpstudio.core.skeleton import Skeleton  # noqa: E402
from kpstudio.gui.document import Document  # noqa: E402
from kpstudio.gui.image_list import ImageListPanel  # noqa: E402
from kpstudio.gui.image_list_model import (  # noqa: E402
    ImageIdRole,
    ImageListModel,
    PathRole,
    StatusRole,
)
from kpstudio.gui.keypoint_panel import KeypointPanel  # noqa: E402
from kpstudio.gui.skeleton_editor import SkeletonEditorDialog  # noqa: E402

KEYPOINTS = ["nose", "l_eye", "r_eye", "tail"]


@pytest.fixture
def doc(qapp, tmp_path):
    skeleton = Skeleton.create(
        KEYPOINTS, edges=[("nose", "l_eye"), ("nose", "r_eye")], flip_pairs=[("l_eye", "r_eye")]
    )
    folder = tmp_path / "project"
    project = Project.create(folder, skeleton)
    paths = [folder / "images" / f"frame_{i}.png" for i in range(1, 13)]
    paths += [folder / "cam2" / "shot_a.png", folder / "cam2" / "shot_b.png"]
    project.add_images((p, 100, 80, f"{i:064x}") for i, p in enumerate(paths))
    document = Document(project)
    yield document
    project.close()


def ids_by_name(doc) -> dict[str, int]:
    return {r.path.rpartition("/")[2]: r.id for r in doc.images()}


def shown(panel: ImageListPanel) -> list[str]:
    return [panel.proxy.index(r, 0).data() for r in range(panel.proxy.rowCount())]


def label_all(doc, image_id: int) -> None:
    for i, name in enumerate(KEYPOINTS):
        doc.place_point(image_id, name, 10 + i, 20)


def count_labels_of(doc):
    def count_labels(name: str) -> int:
        return doc.project.query(
            "SELECT COUNT(*) FROM labels l JOIN keypoints k ON k.id = l.keypoint_id "
            "WHERE k.name = ?",
            (name,),
        )[0][0]

    return count_labels


# -- image list ------------------------------------------------------------------------------
def test_list_shows_every_image_by_name_in_natural_order(qtbot, doc):
    panel = ImageListPanel(doc)
    qtbot.addWidget(panel)
    names = shown(panel)
    assert names[:2] == ["shot_a.png", "shot_b.png"]  # cam2/ sorts before images/
    assert names[2:5] == ["frame_1.png", "frame_2.png", "frame_3.png"]
    assert names[-1] == "frame_12.png" and len(names) == 14
    index = panel.proxy.index(2, 0)
    assert index.data(PathRole) == "images/frame_1.png"
    assert index.data(StatusRole) == "unlabeled"
    tip = index.data(Qt.ItemDataRole.ToolTipRole)
    assert "images/frame_1.png" in tip and "100 × 80" in tip and "unlabeled" in tip
    assert not index.data(Qt.ItemDataRole.DecorationRole).isNull()
    assert panel.counts_label.text() == "0 of 14 labeled"


def test_label_edit_refreshes_its_row_and_counts_without_reset(qtbot, doc):
    panel = ImageListPanel(doc)
    qtbot.addWidget(panel)
    image = ids_by_name(doc)["frame_3.png"]
    resets, changed = [], []
    panel.model.modelReset.connect(lambda: resets.append(True))
    panel.model.dataChanged.connect(lambda a, b, roles=(): changed.append((a.row(), b.row())))
    row = panel.model.row_of(image)

    doc.place_point(image, "nose", 5, 5)
    assert panel.model.index(row).data(StatusRole) == "partial"
    assert panel.counts_label.text() == "1 of 14 labeled"
    assert changed == [(row, row)] and not resets

    for name in KEYPOINTS[1:]:
        doc.place_point(image, name, 5, 5)
    assert panel.model.index(row).data(StatusRole) == "done"
    assert panel.counts_label.text() == "1 of 14 labeled"
    while doc.undo_stack.canUndo():
        doc.undo_stack.undo()
    assert panel.model.index(row).data(StatusRole) == "unlabeled"
    assert panel.counts_label.text() == "0 of 14 labeled"
    assert set(changed) == {(row, row)} and not resets


def test_filter_by_status_and_text(qtbot, doc):
    panel = ImageListPanel(doc)
    qtbot.addWidget(panel)
    ids = ids_by_name(doc)
    doc.place_point(ids["frame_2.png"], "nose", 5, 5)
    label_all(doc, ids["shot_b.png"])

    panel.set_status_filter("partial")
    assert shown(panel) == ["frame_2.png"]
    panel.set_status_filter("done")
    assert shown(panel) == ["shot_b.png"]
    assert panel.counts_label.text() == "2 of 14 labeled · 1 shown"
    panel.set_status_filter(None)
    panel.set_filter_text("CAM2")
    assert shown(panel) == ["shot_a.png", "shot_b.png"]
    panel.set_filter_text("")
    assert len(shown(panel)) == 14

    # Typing filters once the user pauses.
    qtbot.keyClicks(panel.search, "frame_1")
    qtbot.waitUntil(lambda: panel.shown_count() == 4, timeout=2000)
    assert shown(panel) == ["frame_1.png", "frame_10.png", "frame_11.png", "frame_12.png"]


def test_neighbour_and_next_unlabeled_follow_the_shown_order(qtbot, doc):
    panel = ImageListPanel(doc)
    qtbot.addWidget(panel)
    ids = ids_by_name(doc)
    name_of = {v: k for k, v in ids.items()}
    label_all(doc, ids["frame_2.png"])
    label_all(doc, ids["frame_3.png"])
    doc.place_point(ids["frame_5.png"], "tail", 5, 5)

    assert panel.neighbour(ids["shot_b.png"], +1) == ids["frame_1.png"]
    assert panel.neighbour(ids["frame_1.png"], -1) == ids["shot_b.png"]
    assert panel.neighbour(ids["shot_a.png"], -1) is None
    assert panel.neighbour(ids["frame_12.png"], +1) is None
    assert panel.next_unlabeled(ids["frame_1.png"]) == ids["frame_4.png"]
    assert panel.next_unlabeled(ids["frame_4.png"]) == ids["frame_5.png"]  # partial counts
    assert panel.next_unlabeled(ids["frame_12.png"]) == ids["shot_a.png"]  # wraps
    assert panel.next_unlabeled(None) == ids["shot_a.png"]

    panel.set_filter_text("frame_1")  # frame_1, frame_10, frame_11, frame_12
    assert panel.neighbour(ids["frame_1.png"], +1) == ids["frame_10.png"]
    assert panel.next_unlabeled(ids["frame_12.png"]) == ids["frame_1.png"]
    # From an image the filter hides, the nearest shown one in that direction.
    assert panel.neighbour(ids["frame_3.png"], +1) == ids["frame_10.png"]
    panel.set_filter_text("")

    panel.set_sort("status")  # to-do first: unlabeled, then partial, then done
    order = [name_of[panel.proxy.index(r, 0).data(ImageIdRole)] for r in range(14)]
    assert order[-3:] == ["frame_5.png", "frame_2.png", "frame_3.png"]
    assert panel.neighbour(ids["frame_5.png"], +1) == ids["frame_2.png"]
    assert panel.neighbour(ids["frame_12.png"], +1) == ids["frame_5.png"]

    for name in ids:  # everything done: nothing left to go to
        label_all(doc, ids[name])
    assert panel.next_unlabeled(ids["frame_1.png"]) is None


def test_set_current_is_silent_but_user_choices_activate(qtbot, doc):
    panel = ImageListPanel(doc)
    qtbot.addWidget(panel)
    panel.resize(300, 600)
    panel.show()
    qtbot.waitExposed(panel)
    ids = ids_by_name(doc)

    with qtbot.assertNotEmitted(panel.image_activated):
        panel.set_current(ids["frame_3.png"])
    assert panel.current_id() == ids["frame_3.png"]
    assert panel.view.currentIndex().data(ImageIdRole) == ids["frame_3.png"]

    view = panel.view
    target = panel.proxy.index(panel.model.row_of(ids["frame_5.png"]), 0)
    with qtbot.waitSignal(panel.image_activated, timeout=1000) as blocker:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                         pos=view.visualRect(target).center())  # fmt: skip
    assert blocker.args == [ids["frame_5.png"]]
    with qtbot.waitSignal(panel.image_activated, timeout=1000) as blocker:
        qtbot.keyClick(view, Qt.Key.Key_Down)
    assert blocker.args == [ids["frame_6.png"]] and panel.current_id() == ids["frame_6.png"]

    # Filtering the current image out (or back in) is not the user choosing another one.
    with qtbot.assertNotEmitted(panel.image_activated):
        panel.set_status_filter("done")
        panel.set_status_filter(None)
        panel.set_sort("status")
    assert view.currentIndex().data(ImageIdRole) == ids["frame_6.png"]


class StubDocument(QObject):
    """Just enough of a Document to feed the list model 100,000 images without SQLite."""

    labels_changed = Signal(int)
    skeleton_changed = Signal()
    images_changed = Signal()
    predictions_stored = Signal(str, object)

    def __init__(self, n: int):
        super().__init__()
        self.records = {
            i: ImageRecord(i, f"video/frame_{i}.jpg", 640, 480, "0" * 64, "train", "unlabeled")
            for i in range(1, n + 1)
        }

    def images(self) -> list[ImageRecord]:
        return list(self.records.values())

    def image(self, image_id: int) -> ImageRecord:
        return self.records[image_id]


def test_list_model_handles_100k_images(qtbot):
    stub = StubDocument(100_000)
    model = ImageListModel(stub)
    assert model.rowCount() == 100_000
    row = model.row_of(54_321)
    assert model.index(row).data() == "frame_54321.jpg"
    assert model.index(row).data(ImageIdRole) == 54_321
    assert model.index(99_999).data() == "frame_100000.jpg"  # natural order, not text order

    resets, changed = [], []
    model.modelReset.connect(lambda: resets.append(True))
    model.dataChanged.connect(lambda a, b, roles=(): changed.append((a.row(), b.row())))
    stub.records[54_321] = dataclasses.replace(stub.records[54_321], status="done")
    stub.labels_changed.emit(54_321)
    assert changed == [(row, row)] and not resets
    assert model.index(row).data(StatusRole) == "done"
    assert model.counts() == {"unlabeled": 99_999, "done": 1}


def test_image_panel_filters_100k_images(qtbot):
    stub = StubDocument(100_000)
    panel = ImageListPanel(stub)
    qtbot.addWidget(panel)
    assert panel.shown_count() == 100_000
    panel.set_filter_text("frame_9999")  # frame_9999 and frame_99990..frame_99999
    assert panel.shown_count() == 11
    assert panel.neighbour(9999, +1) == 99_990


# -- keypoint panel --------------------------------------------------------------------------
def test_keypoint_panel_shows_states_and_reports_choices(qtbot):
    panel = KeypointPanel()
    qtbot.addWidget(panel)
    names = [f"k{i}" for i in range(11)]
    panel.set_skeleton(Skeleton.create(names))
    tree = panel.tree
    assert [tree.topLevelItem(i).text(1) for i in range(11)] == names
    assert [tree.topLevelItem(i).text(2) for i in (0, 8, 9, 10)] == ["1", "9", "0", ""]

    panel.set_states({"k0": 2, "k1": 1, "k2": 0, "k3": None})
    assert [panel.mark(n) for n in names[:5]] == ["●", "◐", "✕", "○", "○"]

    panel.show()
    qtbot.waitExposed(panel)
    with qtbot.assertNotEmitted(panel.keypoint_chosen):
        panel.set_current("k1")
    assert panel.current() == "k1"
    item = tree.topLevelItem(3)
    with qtbot.waitSignal(panel.keypoint_chosen, timeout=1000) as blocker:
        qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton,
                         pos=tree.visualItemRect(item).center())  # fmt: skip
    assert blocker.args == ["k3"]
    with qtbot.waitSignal(panel.edit_skeleton_requested, timeout=1000):
        qtbot.mouseClick(panel.edit_button, Qt.MouseButton.LeftButton)

    panel.set_skeleton(None)
    assert tree.topLevelItemCount() == 0


# -- skeleton editor -------------------------------------------------------------------------
def test_skeleton_editor_edits_and_undo_restores_deleted_labels(qtbot, doc):
    ids = ids_by_name(doc)
    a, b = ids["frame_1.png"], ids["frame_2.png"]
    label_all(doc, a)
    doc.place_point(b, "l_eye", 30, 30)
    before = {i: doc.labels(i) for i in (a, b)}
    answers, questions = [False, True], []

    def confirm(message: str) -> bool:
        questions.append(message)
        return answers.pop(0)

    dialog = SkeletonEditorDialog(doc.skeleton, count_labels_of(doc), confirm=confirm)
    qtbot.addWidget(dialog)
    assert dialog.rename_keypoint("nose", "snout")
    assert dialog.move_keypoint("tail", -3)
    assert not dialog.delete_keypoint("l_eye")  # the user said no
    assert "2 labels" in questions[0] and "l_eye" in questions[0]
    assert dialog.keypoint_names() == ["tail", "snout", "l_eye", "r_eye"]
    assert dialog.delete_keypoint("l_eye")
    assert dialog.flip_pair_names() == [] and dialog.edge_names() == [("snout", "r_eye")]
    assert dialog.add_keypoint("l_ear")
    assert dialog.delete_keypoint("l_ear") and len(questions) == 2  # no labels: no question
    assert dialog.add_keypoint("l_ear")
    assert dialog.add_flip_pair("l_ear", "r_eye")
    assert not dialog.add_flip_pair("r_eye", "tail")  # r_eye is in a pair already
    assert dialog.add_edge("snout", "l_ear")
    assert not dialog.add_edge("l_ear", "snout")  # the same edge twice
    assert dialog.remove_edge("snout", "r_eye")
    assert dialog.set_color("tail", "#123456")

    dialog.accept()
    assert dialog.result() == QDialog.DialogCode.Accepted
    skeleton, renames = dialog.result_skeleton()
    assert skeleton.keypoints == ("tail", "snout", "r_eye", "l_ear")
    assert skeleton.edges == (("snout", "l_ear"),)
    assert skeleton.flip_pairs == (("l_ear", "r_eye"),)
    assert skeleton.colors[0] == "#123456"
    assert renames == {"nose": "snout"}

    doc.edit_skeleton(skeleton, renames)
    assert {lb.keypoint for lb in doc.labels(a)} == {"snout", "r_eye", "tail"}
    assert doc.labels(b) == []
    assert doc.image(b).status == "unlabeled"
    doc.undo_stack.undo()
    assert doc.skeleton.keypoints == tuple(KEYPOINTS)
    for i in (a, b):
        assert [(lb.keypoint, lb.x, lb.y) for lb in doc.labels(i)] == [
            (lb.keypoint, lb.x, lb.y) for lb in before[i]
        ]


def test_skeleton_editor_refuses_duplicate_names_and_stays_open(qtbot, doc):
    dialog = SkeletonEditorDialog(doc.skeleton, count_labels_of(doc), confirm=lambda _: True)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    qtbot.keyClicks(dialog.new_name, "chin")
    qtbot.keyClick(dialog.new_name, Qt.Key.Key_Return)  # adds; does not press OK
    assert dialog.isVisible() and dialog.keypoint_names()[-1] == "chin"
    assert dialog.new_name.text() == ""
    dialog.rename_keypoint("tail", "Nose")
    dialog.accept()
    assert dialog.isVisible() and dialog.result() != QDialog.DialogCode.Accepted
    assert "appears twice" in dialog.error_label.text()

    # Renaming in place (what a double-click edit commits) is tracked too.
    dialog.keypoint_list.item(3).setText("tail tip")
    assert dialog.keypoint_names()[3] == "tail tip"
    dialog.accept()
    assert not dialog.isVisible() and dialog.result() == QDialog.DialogCode.Accepted
    skeleton, renames = dialog.result_skeleton()
    assert skeleton.keypoints == ("nose", "l_eye", "r_eye", "tail tip", "chin")
    assert renames == {"tail": "tail tip"}


def test_deleted_keypoint_name_taken_by_another_loses_its_labels(qtbot, doc):
    ids = ids_by_name(doc)
    a, b = ids["frame_1.png"], ids["frame_2.png"]
    doc.place_point(a, "l_eye", 11, 11)
    doc.place_point(a, "r_eye", 22, 22)
    doc.place_point(b, "l_eye", 33, 33)
    dialog = SkeletonEditorDialog(doc.skeleton, count_labels_of(doc), confirm=lambda _: True)
    qtbot.addWidget(dialog)
    dialog.delete_keypoint("l_eye")
    dialog.rename_keypoint("r_eye", "l_eye")
    skeleton, renames = dialog.result_skeleton()
    doc.edit_skeleton(skeleton, renames)
    assert [(lb.keypoint, lb.x) for lb in doc.labels(a)] == [("l_eye", 22)]
    assert doc.labels(b) == []
    doc.undo_stack.undo()
    assert [(lb.keypoint, lb.x) for lb in doc.labels(a)] == [("l_eye", 11), ("r_eye", 22)]
    assert [(lb.keypoint, lb.x) for lb in doc.labels(b)] == [("l_eye", 33)]
