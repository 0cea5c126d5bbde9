"""Undo commands. Each holds stable keys (image id, instance, keypoint name) and the states
before and after, never graphics items; redo/undo write through the Document at once."""

from __future__ import annotations

from PySide6.QtGui import QUndoCommand

from kpstudio.core.skeleton import Skeleton
from kpstudio.gui.document import Document, PointState

MOVE_ID = 1001


class SetPoint(QUndoCommand):
    """Place, delete or change the visibility of one point (state None: no label)."""

    def __init__(self, doc: Document, image_id: int, instance: int, keypoint: str,
                 new: PointState | None, text: str):  # fmt: skip
        super().__init__(text)
        self._doc, self._key = doc, (image_id, instance, keypoint)
        self._old = doc.point(image_id, keypoint, instance)
        self._new = new

    def redo(self) -> None:
        self._doc.write_point(*self._key, self._new)

    def undo(self) -> None:
        self._doc.write_point(*self._key, self._old)


class MovePoint(QUndoCommand):
    """Move one point. Moves of the same point within one gesture (a drag, a run of arrow-key
    nudges) merge, so one undo puts the point back where the gesture started."""

    def __init__(self, doc: Document, image_id: int, instance: int, keypoint: str,
                 old: PointState, new: PointState, gesture: int | None):  # fmt: skip
        super().__init__(f"Move {keypoint}")
        self._doc, self._key = doc, (image_id, instance, keypoint)
        self._old, self._new, self._gesture = old, new, gesture

    def redo(self) -> None:
        self._doc.write_point(*self._key, self._new)

    def undo(self) -> None:
        self._doc.write_point(*self._key, self._old)

    def id(self) -> int:
        return MOVE_ID

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt's name
        if (not isinstance(other, MovePoint) or other._key != self._key
                or self._gesture is None or other._gesture != self._gesture):  # fmt: skip
            return False
        self._new = other._new
        return True


class SetPoints(QUndoCommand):
    """Several points of one image at once (paste, accepted prediction)."""

    def __init__(self, doc: Document, image_id: int, points: dict, text: str):
        super().__init__(text)
        self._doc, self._image = doc, image_id
        self._new = dict(points)
        self._old = {key: doc.point(image_id, key[1], key[0]) for key in points}

    def redo(self) -> None:
        self._doc.write_points(self._image, self._new)

    def undo(self) -> None:
        self._doc.write_points(self._image, self._old)


class EditSkeleton(QUndoCommand):
    """Change the skeleton. Undo restores the old skeleton and every label a deleted keypoint
    took with it."""

    def __init__(self, doc: Document, skeleton: Skeleton, renames: dict[str, str]):
        super().__init__("Edit skeleton")
        self._doc = doc
        self._old, self._new = doc.skeleton, skeleton
        self._renames = dict(renames)
        self._back = {new: old for old, new in renames.items()}
        doomed = [name for name in self._old.keypoints
                  if renames.get(name, name) not in skeleton.keypoints]  # fmt: skip
        # Labels of keypoints about to be deleted, to bring back on undo.
        self._lost: list[tuple[int, int, str, PointState]] = []
        if doomed:
            for image in doc.images():
                for label in doc.labels(image.id):
                    if label.keypoint in doomed:
                        state = PointState(label.x, label.y, label.visibility, label.source)
                        self._lost.append((image.id, label.instance, label.keypoint, state))

    @property
    def labels_deleted(self) -> int:
        return len(self._lost)

    def redo(self) -> None:
        self._doc.project.set_skeleton(self._new, self._renames)
        self._doc.skeleton_changed.emit()
        for image_id in {row[0] for row in self._lost}:
            self._doc.labels_changed.emit(image_id)

    def undo(self) -> None:
        self._doc.project.set_skeleton(self._old, self._back)
        by_image: dict[int, dict] = {}
        for image_id, instance, keypoint, state in self._lost:
            by_image.setdefault(image_id, {})[(instance, keypoint)] = state
        for image_id, points in by_image.items():
            self._doc.write_points(image_id, points)
        self._doc.skeleton_changed.emit()
