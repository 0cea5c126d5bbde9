"""Undo commands write through whatever LabelEditor they are given: no Document needed."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtGui import QUndoStack  # noqa: E402

from kpstudio.core.labelset import Visibility  # noqa: E402
from kpstudio.core.point_state import PointState  # noqa: E402
from kpstudio.core.skeleton import Skeleton  # noqa: E402
from kpstudio.gui.undo_commands import EditSkeleton, MovePoint, SetPoints  # noqa: E402


class RecordingEditor:
    """A LabelEditor that records each write it is handed."""

    def __init__(self):
        self.writes: list[tuple] = []

    def apply_points(self, image_id, changes):
        self.writes.append(("points", image_id, dict(changes)))

    def apply_skeleton(self, skeleton, renames, restore):
        self.writes.append(("skeleton", skeleton.keypoints, dict(renames), restore))


def _at(x):
    return PointState(x, 1.0, Visibility.VISIBLE)


def test_moves_of_one_gesture_merge_and_other_moves_do_not(qtbot):
    editor, stack = RecordingEditor(), QUndoStack()
    stack.push(MovePoint(editor, 3, 0, "nose", _at(1.0), _at(2.0), gesture=7))
    stack.push(MovePoint(editor, 3, 0, "nose", _at(2.0), _at(3.0), gesture=7))
    stack.push(MovePoint(editor, 3, 0, "tail", _at(5.0), _at(6.0), gesture=7))  # another point
    stack.push(MovePoint(editor, 3, 0, "tail", _at(6.0), _at(7.0), gesture=None))  # no gesture
    assert stack.count() == 3
    stack.undo()
    stack.undo()
    stack.undo()  # the merged nose gesture: back to where it started, in one write
    assert editor.writes[-1] == ("points", 3, {(0, "nose"): _at(1.0)})


def test_set_points_and_skeleton_edits_hand_the_whole_change_over_at_once(qtbot):
    editor, stack = RecordingEditor(), QUndoStack()
    old = {(0, "nose"): None, (0, "tail"): _at(4.0)}
    new = {(0, "nose"): _at(1.0), (0, "tail"): None}
    stack.push(SetPoints(editor, 9, old, new, "Paste"))
    stack.undo()
    assert editor.writes == [("points", 9, new), ("points", 9, old)]
    before, after = Skeleton.create(["nose", "tail"]), Skeleton.create(["snout"])
    lost = {9: {(0, "tail"): _at(4.0)}}
    command = EditSkeleton(editor, before, after, {"nose": "snout"}, lost)
    stack.push(command)
    stack.undo()
    assert command.labels_deleted == 1
    assert editor.writes[2:] == [
        ("skeleton", ("snout",), {"nose": "snout"}, {}),
        ("skeleton", ("nose", "tail"), {"snout": "nose"}, lost),
    ]
