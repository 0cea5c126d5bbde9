"""Labeling on the canvas: which image and keypoint are current, what a click, a drag or a key
does. Every change goes through the Document as an undo command; this class only decides
which command, and redraws when the Document says labels changed."""

from __future__ import annotations

import itertools
import math

from PySide6.QtCore import QObject, Signal, Slot

from kpstudio.core.label_checks import sanity_warnings
from kpstudio.core.labelset import Instance, Visibility
from kpstudio.gui.canvas import ImageCanvas, Marker
from kpstudio.gui.document import Document, PointState

_gestures = itertools.count(1)  # ids that group moves of one drag / one run of nudges
REFERENCE_IMAGES = 50  # how many other labeled images the sanity hints compare against


class LabelingController(QObject):
    current_keypoint_changed = Signal(str)
    image_changed = Signal(int)  # the image shown and edited now
    selection_changed = Signal(str)  # keypoint name, "" for none

    def __init__(self, doc: Document, canvas: ImageCanvas, parent: QObject | None = None):
        super().__init__(parent)
        self.doc, self.canvas = doc, canvas
        self.image_id: int | None = None
        self.keypoint: str | None = None
        self.selected: str | None = None
        self.instance = 0
        self._nudge_gesture: int | None = None
        self._drag_gesture: int | None = None
        canvas.clicked_empty.connect(self._on_canvas_clicked_empty)
        canvas.marker_clicked.connect(self._on_canvas_marker_clicked)
        canvas.marker_dragged.connect(self._on_canvas_marker_dragged)
        canvas.marker_right_clicked.connect(self._on_canvas_marker_right_clicked)
        doc.labels_changed.connect(self._on_doc_labels_changed)
        doc.skeleton_changed.connect(self._on_doc_skeleton_changed)

    def detach(self) -> None:
        """Stop listening (the project is closing)."""
        self.canvas.clicked_empty.disconnect(self._on_canvas_clicked_empty)
        self.canvas.marker_clicked.disconnect(self._on_canvas_marker_clicked)
        self.canvas.marker_dragged.disconnect(self._on_canvas_marker_dragged)
        self.canvas.marker_right_clicked.disconnect(self._on_canvas_marker_right_clicked)

    # -- state ----------------------------------------------------------------------------
    def show_image(self, image_id: int | None) -> None:
        """Make `image_id` current (its pixels arrive separately through the image loader)."""
        self.image_id, self.selected, self._nudge_gesture = image_id, None, None
        self.choose_keypoint(self._first_unlabeled() or self._first_keypoint())
        self.refresh()
        self.image_changed.emit(-1 if image_id is None else image_id)

    def choose_keypoint(self, name: str | None) -> None:
        self.keypoint = name
        color = None
        if name and self.doc.skeleton and name in self.doc.skeleton.keypoints:
            color = self.doc.skeleton.colors[self.doc.skeleton.index(name)]
        self.canvas.set_placing(name, color)
        self.current_keypoint_changed.emit(name or "")

    def choose_keypoint_number(self, number: int) -> None:
        """Digits 1–9 pick keypoints 1–9, 0 the tenth."""
        index = 9 if number == 0 else number - 1
        if self.doc.skeleton and index < len(self.doc.skeleton):
            self.choose_keypoint(self.doc.skeleton.keypoints[index])

    def states(self) -> dict[str, PointState]:
        """The current image's labeled points of the current instance, by keypoint."""
        if self.image_id is None:
            return {}
        return {lab.keypoint: PointState(lab.x, lab.y, lab.visibility, lab.source)
                for lab in self.doc.labels(self.image_id)
                if lab.instance == self.instance}  # fmt: skip

    # -- edits ------------------------------------------------------------------------------
    @Slot(float, float)
    def _on_canvas_clicked_empty(self, x: float, y: float) -> None:
        if self.image_id is None or not self.keypoint:
            return
        placed = self.keypoint
        self.doc.place_point(self.image_id, placed, x, y, self.instance)
        self.selected = placed
        # Advance to the next keypoint still to label, in skeleton order after this one.
        self.choose_keypoint(self._first_unlabeled(after=placed) or placed)
        self.refresh()

    @Slot(int, str)
    def _on_canvas_marker_clicked(self, instance: int, keypoint: str) -> None:
        self.instance, self.selected = instance, keypoint
        self._drag_gesture = next(_gestures)
        self._nudge_gesture = None  # a new selection starts a new run of nudges
        self.canvas.set_selected(instance, keypoint)
        self.selection_changed.emit(keypoint)

    @Slot(int, str)
    def _on_canvas_marker_right_clicked(self, instance: int, keypoint: str) -> None:
        """Right-click on a point: select it and cycle its visibility, like V."""
        self._on_canvas_marker_clicked(instance, keypoint)
        self.cycle_visibility()

    @Slot(int, str, float, float, bool)
    def _on_canvas_marker_dragged(self, instance: int, keypoint: str, x: float, y: float,
                                  finished: bool) -> None:  # fmt: skip
        if self.image_id is None:
            return
        if self._drag_gesture is None:
            self._drag_gesture = next(_gestures)
        # Every drag step is written (nothing lost if the app dies mid-drag); the steps of one
        # drag merge into a single undo command.
        self.doc.move_point(self.image_id, keypoint, x, y, instance, self._drag_gesture)
        if finished:
            self._drag_gesture = None

    def nudge(self, dx: float, dy: float) -> None:
        """Arrow keys: move the selected point; a run of nudges is one undo step."""
        state = self.states().get(self.selected or "")
        if self.image_id is None or state is None or state.visibility == Visibility.ABSENT:
            return
        size = self.canvas.image_size() or (self.doc.image(self.image_id).width,
                                            self.doc.image(self.image_id).height)  # fmt: skip
        x = min(max(state.x + dx, 0.0), float(size[0]))
        y = min(max(state.y + dy, 0.0), float(size[1]))
        if self._nudge_gesture is None:
            self._nudge_gesture = next(_gestures)
        self.doc.move_point(self.image_id, self.selected, x, y, self.instance,
                            self._nudge_gesture)  # fmt: skip

    def end_nudges(self) -> None:
        self._nudge_gesture = None

    def cycle_visibility(self) -> None:
        target = self.selected or self.keypoint
        if self.image_id is not None and target:
            self.doc.cycle_visibility(self.image_id, target, self.instance)

    def delete_selected(self) -> None:
        target = self.selected or self.keypoint
        if self.image_id is not None and target:
            self.doc.delete_point(self.image_id, target, self.instance)
            self.selected = None
            self.choose_keypoint(target)

    def mark_absent(self) -> None:
        """The current keypoint is not on this image: record that decision, then advance."""
        if self.image_id is None or not self.keypoint:
            return
        name = self.keypoint
        absent = PointState(math.nan, math.nan, Visibility.ABSENT)
        self.doc.paste_points(self.image_id, {(self.instance, name): absent}, f"Mark {name} absent")
        self.choose_keypoint(self._first_unlabeled(after=name) or name)

    def copy_from(self, source_image: int) -> int:
        """Paste every label of `source_image` that fits this image; returns how many."""
        if self.image_id is None or source_image == self.image_id:
            return 0
        image = self.doc.image(self.image_id)
        points = {}
        for lab in self.doc.labels(source_image):
            if lab.visibility != Visibility.ABSENT and not (
                0 <= lab.x <= image.width and 0 <= lab.y <= image.height):  # fmt: skip
                continue
            points[(lab.instance, lab.keypoint)] = PointState(lab.x, lab.y, lab.visibility)
        self.doc.paste_points(self.image_id, points, "Copy labels from previous image")
        return len(points)

    # -- drawing ----------------------------------------------------------------------------
    def refresh(self) -> None:
        skeleton = self.doc.skeleton
        if self.image_id is None or skeleton is None:
            self.canvas.set_markers([], [], {})
            return
        labels = self.doc.labels(self.image_id)
        markers = [Marker(lab.instance, lab.keypoint, lab.x, lab.y, int(lab.visibility))
                   for lab in labels if lab.visibility != Visibility.ABSENT]  # fmt: skip
        colors = dict(zip(skeleton.keypoints, skeleton.colors, strict=True))
        self.canvas.set_markers(markers, list(skeleton.edges), colors)
        self.canvas.set_selected(self.instance if self.selected else None, self.selected)
        self.canvas.set_warnings(self._warnings())

    @Slot(int)
    def _on_doc_labels_changed(self, image_id: int) -> None:
        if image_id == self.image_id:
            self.refresh()

    @Slot()
    def _on_doc_skeleton_changed(self) -> None:
        if self.keypoint not in (self.doc.skeleton.keypoints if self.doc.skeleton else ()):
            self.choose_keypoint(self._first_unlabeled() or self._first_keypoint())
        self.refresh()

    def _warnings(self) -> dict[tuple[int, str], str]:
        skeleton = self.doc.skeleton
        current = self._instance_of(self.image_id)
        if current is None:
            return {}
        others = []
        # A bounded sample: the hints must stay instant in a project of 100,000 images.
        for record in self.doc.project.images(status="done", limit=REFERENCE_IMAGES + 1):
            if record.id != self.image_id:
                inst = self._instance_of(record.id)
                if inst is not None:
                    others.append(inst)
        found = sanity_warnings(skeleton, current, others[:REFERENCE_IMAGES])
        return {(self.instance, name): message for name, message in found.items()}

    def _instance_of(self, image_id: int | None) -> Instance | None:
        if image_id is None:
            return None
        instances = self.doc.project.instances(image_id)
        return instances[self.instance] if len(instances) > self.instance else None

    def _first_keypoint(self) -> str | None:
        skeleton = self.doc.skeleton
        return skeleton.keypoints[0] if skeleton else None

    def _first_unlabeled(self, after: str | None = None) -> str | None:
        skeleton = self.doc.skeleton
        if skeleton is None:
            return None
        done = set(self.states())
        names = list(skeleton.keypoints)
        start = names.index(after) + 1 if after in names else 0
        for name in names[start:] + names[:start]:
            if name not in done:
                return name
        return None
