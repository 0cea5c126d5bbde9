"""The open project and its undo stack: the only code in the studio that changes labels, and
the only one that announces changes.

Every edit is a QUndoCommand (kpstudio.gui.undo_commands) pushed here; its redo/undo hand the
whole change back here, where it is written in one SQLite transaction, then one narrow signal
tells the views what changed. Writes a worker made through its own handle (stored
predictions, added images, an import) are announced here too, once the worker is done. Views
re-read from here; they never keep a second copy of the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from kpstudio.core.labeling_log import LabelingTally
from kpstudio.core.labelset import Visibility
from kpstudio.core.point_state import PointChanges, PointState
from kpstudio.core.project import ImageRecord, Label, Project, ProjectError
from kpstudio.core.skeleton import Skeleton
from kpstudio.gui.undo_commands import EditSkeleton, MovePoint, SetPoints

T = TypeVar("T")


class Document(QObject):
    labels_changed = Signal(int)  # image id
    skeleton_changed = Signal()  # the skeleton, and with it any image's labels or status
    images_changed = Signal()  # images added or removed
    predictions_stored = Signal(str, object)  # run id, list of image ids

    def __init__(self, project: Project, parent: QObject | None = None):
        super().__init__(parent)
        self.project = project
        self.undo_stack = QUndoStack(self)
        # Seconds and clicks per image, written with the next edit's transaction.
        self.tally = LabelingTally()
        self._counted_gesture: int | None = None

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
        return self.project.point(image_id, keypoint, instance)

    def points(self, image_id: int, instance: int = 0) -> dict[str, PointState]:
        """The labeled points of one instance of an image, by keypoint."""
        return {lab.keypoint: PointState(lab.x, lab.y, lab.visibility, lab.source)
                for lab in self.project.labels(image_id) if lab.instance == instance}  # fmt: skip

    # -- editing: each call is one undoable command, one transaction ----------------------
    def place_point(self, image_id: int, keypoint: str, x: float, y: float,
                    instance: int = 0) -> None:  # fmt: skip
        new = PointState(x, y, Visibility.VISIBLE)
        self._count(image_id, self.point(image_id, keypoint, instance))
        self._set(image_id, {(instance, keypoint): new}, f"Place {keypoint}")

    def move_point(self, image_id: int, keypoint: str, x: float, y: float, instance: int = 0,
                   gesture: int | None = None) -> None:  # fmt: skip
        """Move a point; moves sharing a `gesture` id (one drag, one run of nudges) merge into
        one undo step."""
        old = self.point(image_id, keypoint, instance)
        if old is None:
            return self.place_point(image_id, keypoint, x, y, instance)
        new = PointState(x, y, old.visibility)
        # One drag is one click; a run of nudges (one gesture id) is one click too.
        if gesture is None or gesture != self._counted_gesture:
            self._count(image_id, old)
            self._counted_gesture = gesture
        self.undo_stack.push(MovePoint(self, image_id, instance, keypoint, old, new, gesture))

    def set_visibility(self, image_id: int, keypoint: str, visibility: Visibility,
                       instance: int = 0) -> None:  # fmt: skip
        old = self.point(image_id, keypoint, instance)
        if old is None or old.visibility == visibility:
            return
        if visibility == Visibility.ABSENT:
            new = PointState.absent()
        elif old.visibility == Visibility.ABSENT:
            return  # an absent point has no position to show: place it instead
        else:
            new = PointState(old.x, old.y, visibility, old.source)
        text = f"Mark {keypoint} {visibility.name.lower()}"
        self.tally.click(image_id)
        self._set(image_id, {(instance, keypoint): new}, text)

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
        old = self.point(image_id, keypoint, instance)
        if old is not None:
            self._count(image_id, old)
            self._set(image_id, {(instance, keypoint): None}, f"Delete {keypoint}")

    def paste_points(self, image_id: int, points: dict[tuple[int, str], PointState],
                     text: str = "Paste labels") -> None:  # fmt: skip
        """Set several points at once (copy from the previous image, accept a prediction)."""
        if points:
            accepted = sum(p is not None and p.source == "prediction-accepted"
                           for p in points.values())  # fmt: skip
            if accepted:
                self.tally.accept(image_id, accepted)
            else:
                self.tally.click(image_id)
            self._set(image_id, points, text)

    def edit_skeleton(self, skeleton: Skeleton, renames: dict[str, str] | None = None) -> None:
        renames = renames or {}
        if skeleton == self.skeleton and not renames:
            return
        old = self.skeleton
        doomed = {name for name in old.keypoints
                  if renames.get(name, name) not in skeleton.keypoints}  # fmt: skip
        # Labels of keypoints about to be deleted, to bring back on undo.
        lost: dict[int, PointChanges] = {}
        if doomed:
            for image in self.images():
                for label in self.labels(image.id):
                    if label.keypoint in doomed:
                        state = PointState(label.x, label.y, label.visibility, label.source)
                        lost.setdefault(image.id, {})[(label.instance, label.keypoint)] = state
        self.undo_stack.push(EditSkeleton(self, old, skeleton, renames, lost))

    def mark_unreadable(self, image_id: int) -> None:
        """The image file could not be decoded: flag it in the list (not an undoable edit)."""
        self.project.mark_unreadable(image_id)
        self.labels_changed.emit(image_id)

    def image_shown(self, image_id: int | None) -> None:
        """The studio shows `image_id` now (None: none, the project closes): the time spent
        on the image left is written now (one small commit, only if anything was counted),
        so a crash loses at most the counts of the image on screen."""
        self.tally.show(image_id)
        if not self.tally.has_pending() or self.project.readonly:
            return
        try:
            with self.project.transaction() as conn:
                self.tally.write_pending(conn)
        except ProjectError:  # a full disk: the counts stay pending for the next edit
            return
        self.tally.forget_pending()

    def _count(self, image_id: int, old: PointState | None) -> None:
        """A click on a point that held `old`: changing an accepted prediction corrects it."""
        self.tally.click(image_id)
        if old is not None and old.source == "prediction-accepted":
            self.tally.correct(image_id)

    def _set(self, image_id: int, new: PointChanges, text: str) -> None:
        old = {key: self.point(image_id, key[1], key[0]) for key in new}
        self.undo_stack.push(SetPoints(self, image_id, old, new, text))

    # -- the writes commands hand back (kpstudio.gui.undo_commands.LabelEditor) -----------
    def apply_points(self, image_id: int, changes: PointChanges) -> None:
        with self.project.transaction() as conn:  # one transaction, the counts with it
            self.project.write_points_in(conn, image_id, changes)
            self.tally.write_pending(conn)
        self.tally.forget_pending()
        self.labels_changed.emit(image_id)

    def apply_skeleton(self, skeleton: Skeleton, renames: dict[str, str],
                       restore: dict[int, PointChanges]) -> None:  # fmt: skip
        """The skeleton, and the labels an undo brings back, in one transaction."""
        with self.project.transaction() as conn:
            self.project.write_skeleton(conn, skeleton, renames)
            for image_id, points in restore.items():
                self.project.write_points_in(conn, image_id, points)
        self.skeleton_changed.emit()

    # -- writes of workers (Tasks), announced once they are over --------------------------
    def write_in_worker(self, write: Callable[[Project], T]) -> T:
        """In a Task's job (a worker thread): `write` gets a handle of its own on the project,
        whose short transactions give way to the user's edits. Announce the result with one
        of the worker_* methods below from the UI thread once the Task has ended."""
        with self.project.worker_handle() as store:
            return write(store)

    def worker_added_images(self) -> None:
        self.images_changed.emit()

    def worker_stored_predictions(self, run_id: str, image_ids: Iterable[int]) -> None:
        self.predictions_stored.emit(run_id, list(image_ids))

    def worker_imported(self) -> None:
        """An import changed images, labels and maybe the skeleton outside the undo stack:
        older steps could clash with it, so the stack starts afresh."""
        self.undo_stack.clear()
        self.images_changed.emit()
        self.skeleton_changed.emit()
