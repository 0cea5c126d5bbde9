"""Undo commands of the studio. Each holds stable keys (image id, instance, keypoint name) and
the states before and after, never graphics items. It receives what it writes through (the
Document, as a LabelEditor) and knows nothing else of it: redo/undo hand the whole change to
the editor, which writes it in one transaction and announces it."""

from __future__ import annotations

from typing import Protocol

from PySide6.QtGui import QUndoCommand

from kpstudio.core.point_state import PointChanges, PointState
from kpstudio.core.skeleton import Skeleton

MOVE_ID = 1001


class LabelEditor(Protocol):
    """What a command writes through (kpstudio.gui.document.Document)."""

    def apply_points(self, image_id: int, changes: PointChanges) -> None: ...

    def apply_skeleton(self, skeleton: Skeleton, renames: dict[str, str],
                       restore: dict[int, PointChanges]) -> None: ...  # fmt: skip


class SetPoints(QUndoCommand):
    """Points of one image set at once (place, delete, visibility, paste, accepted prediction):
    `old` and `new` map (instance, keypoint) to a PointState, None for no label."""

    def __init__(self, editor: LabelEditor, image_id: int, old: PointChanges,
                 new: PointChanges, text: str):  # fmt: skip
        super().__init__(text)
        self._editor, self._image = editor, image_id
        self._old, self._new = dict(old), dict(new)

    def redo(self) -> None:
        self._editor.apply_points(self._image, self._new)

    def undo(self) -> None:
        self._editor.apply_points(self._image, self._old)


class MovePoint(QUndoCommand):
    """Move one point. Moves of the same point within one gesture (a drag, a run of arrow-key
    nudges) merge, so one undo puts the point back where the gesture started."""

    def __init__(self, editor: LabelEditor, image_id: int, instance: int, keypoint: str,
                 old: PointState, new: PointState, gesture: int | None):  # fmt: skip
        super().__init__(f"Move {keypoint}")
        self._editor, self._image, self._key = editor, image_id, (instance, keypoint)
        self._old, self._new, self._gesture = old, new, gesture

    def redo(self) -> None:
        self._editor.apply_points(self._image, {self._key: self._new})

    def undo(self) -> None:
        self._editor.apply_points(self._image, {self._key: self._old})

    def id(self) -> int:
        return MOVE_ID

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt's name
        if not isinstance(other, MovePoint) or self._gesture is None:
            return False
        if (other._image, other._key, other._gesture) != (self._image, self._key, self._gesture):
            return False
        self._new = other._new
        return True


class EditSkeleton(QUndoCommand):
    """Change the skeleton. Undo restores the old skeleton and every label a deleted keypoint
    took with it (`lost`: image id → the points to bring back)."""

    def __init__(self, editor: LabelEditor, old: Skeleton, new: Skeleton,
                 renames: dict[str, str], lost: dict[int, PointChanges]):  # fmt: skip
        super().__init__("Edit skeleton")
        self._editor = editor
        self._old, self._new = old, new
        self._renames = dict(renames)
        self._back = {new: old for old, new in renames.items()}
        self._lost = lost

    @property
    def labels_deleted(self) -> int:
        return sum(len(points) for points in self._lost.values())

    def redo(self) -> None:
        self._editor.apply_skeleton(self._new, self._renames, {})

    def undo(self) -> None:
        self._editor.apply_skeleton(self._old, self._back, self._lost)
