"""The open project and its undo stack: the only code in the studio that changes labels.

Every edit is a QUndoCommand (kpstudio.gui.commands) pushed here; its redo/undo write through
the project store at once (one SQLite transaction each), then a narrow signal tells the views
what changed. Views re-read from here; they never keep a second copy of the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from kpstudio.core.labelset import Visibility
from kpstudio.core.project import ImageRecord, Label, Project
from kpstudio.core.skeleton import Skeleton


@dataclass(frozen=True)
class PointState:
    """What one keypoint of one instance holds: a position and visibility, or nothing."""

    x: float
    y: float
    visibility: Visibility
    source: str = "manual"


class Document(QObject):
    labels_changed = Signal(int)  # image id
    skeleton_changed = Signal()
    images_changed = Signal()  # images added or removed

    def __init__(self, project: Project, parent: QObject | None = None):
        super().__init__(parent)
        self.project = project
        self.undo_stack = QUndoStack(self)

    # -- reading ------------------------------------------------------------------------
    @property
    def skeleton(self) -> Skeleton:
        return self.project.skeleton

    def images(self) -> list[ImageRecord]:
        return self.project.images()

    def image(self, image_id: int) -> ImageRecord:
        return self.project.image(image_id)

    def labels(self, image_id: int) -> list[Label]:
        return self.project.labels(image_id)

    def point(self, image_id: int, keypoint: str, instance: int = 0) -> PointState | None:
        for label in self.project.labels(image_id):
            if label.keypoint == keypoint and label.instance == instance:
                return PointState(label.x, label.y, label.visibility, label.source)
        return None

    # -- editing: each call is one undoable command --------------------------------------
    def place_point(self, image_id: int, keypoint: str, x: float, y: float,
                    instance: int = 0) -> None:  # fmt: skip
        from kpstudio.gui.commands import SetPoint

        new = PointState(x, y, Visibility.VISIBLE)
        self.undo_stack.push(SetPoint(self, image_id, instance, keypoint, new, f"Place {keypoint}"))

    def move_point(self, image_id: int, keypoint: str, x: float, y: float, instance: int = 0,
                   gesture: int | None = None) -> None:  # fmt: skip
        """Move a point; moves sharing a `gesture` id (one drag, one run of nudges) merge into
        one undo step."""
        from kpstudio.gui.commands import MovePoint

        old = self.point(image_id, keypoint, instance)
        if old is None:
            return self.place_point(image_id, keypoint, x, y, instance)
        new = PointState(x, y, old.visibility)
        self.undo_stack.push(MovePoint(self, image_id, instance, keypoint, old, new, gesture))

    def set_visibility(self, image_id: int, keypoint: str, visibility: Visibility,
                       instance: int = 0) -> None:  # fmt: skip
        from kpstudio.gui.commands import SetPoint

        old = self.point(image_id, keypoint, instance)
        if old is None or old.visibility == visibility:
            return
        if visibility == Visibility.ABSENT:
            new = PointState(float("nan"), float("nan"), Visibility.ABSENT)
        elif old.visibility == Visibility.ABSENT:
            return  # an absent point has no position to show: place it instead
        else:
            new = PointState(old.x, old.y, visibility, old.source)
        text = f"Mark {keypoint} {visibility.name.lower()}"
        self.undo_stack.push(SetPoint(self, image_id, instance, keypoint, new, text))

    def cycle_visibility(self, image_id: int, keypoint: str, instance: int = 0) -> None:
        """visible → occluded → absent → visible (an absent point keeps no position, so the
        last step needs a click; from absent this does nothing)."""
        old = self.point(image_id, keypoint, instance)
        if old is None:
            return
        following = {Visibility.VISIBLE: Visibility.OCCLUDED,
                     Visibility.OCCLUDED: Visibility.ABSENT}  # fmt: skip
        if old.visibility in following:
            self.set_visibility(image_id, keypoint, following[old.visibility], instance)

    def delete_point(self, image_id: int, keypoint: str, instance: int = 0) -> None:
        from kpstudio.gui.commands import SetPoint

        if self.point(image_id, keypoint, instance) is None:
            return
        self.undo_stack.push(SetPoint(self, image_id, instance, keypoint, None,
                                      f"Delete {keypoint}"))  # fmt: skip

    def paste_points(self, image_id: int, points: dict[tuple[int, str], PointState],
                     text: str = "Paste labels") -> None:  # fmt: skip
        """Set several points at once (copy from the previous image, accept a prediction)."""
        from kpstudio.gui.commands import SetPoints

        if points:
            self.undo_stack.push(SetPoints(self, image_id, points, text))

    def edit_skeleton(self, skeleton: Skeleton, renames: dict[str, str] | None = None) -> None:
        from kpstudio.gui.commands import EditSkeleton

        if skeleton != self.skeleton or renames:
            self.undo_stack.push(EditSkeleton(self, skeleton, renames or {}))

    def mark_unreadable(self, image_id: int) -> None:
        """The image file could not be decoded: flag it in the list (not an undoable edit)."""
        self.project.mark_unreadable(image_id)
        self.labels_changed.emit(image_id)

    # -- raw writes, for the commands only ------------------------------------------------
    def write_point(self, image_id: int, instance: int, keypoint: str,
                    state: PointState | None) -> None:  # fmt: skip
        self.write_points(image_id, {(instance, keypoint): state})

    def write_points(self, image_id: int, points: dict[tuple[int, str], PointState | None]):
        by_instance: dict[tuple[int, str], list] = {}
        for (instance, keypoint), state in points.items():
            if state is None:
                self.project.delete_label(image_id, keypoint, instance=instance)
                continue
            by_instance.setdefault((instance, state.source), []).append(
                (keypoint, state.x, state.y, state.visibility)
            )
        for (instance, source), rows in by_instance.items():
            self.project.set_labels(image_id, rows, instance=instance, source=source)
        self.labels_changed.emit(image_id)
