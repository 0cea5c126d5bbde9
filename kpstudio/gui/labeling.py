"""Labeling on the canvas: which image and keypoint are current, what a click, a drag or a key
does. Every change goes through the Document as an undo command; this class only decides
which command, and redraws when the Document says labels changed: one redraw and one run of
the sanity hints per edit. A drag moves the marker on the canvas live and is written once,
on release."""

from __future__ import annotations

import itertools

from PySide6.QtCore import QObject, Signal, Slot

from kpstudio.core.label_checks import sanity_warnings
from kpstudio.core.labelset import Instance, Visibility
from kpstudio.core.point_state import PointState
from kpstudio.gui.canvas import ImageCanvas, Marker
from kpstudio.gui.document import Document

_gestures = itertools.count(1)  # ids that group the moves of one run of nudges
REFERENCE_IMAGES = 50  # how many other labeled images the sanity hints compare against


class LabelingController(QObject):
    current_keypoint_changed = Signal(str)
    image_changed = Signal(int)  # the image shown and edited now
    selection_changed = Signal(str)  # keypoint name, "" for none
    points_changed = Signal(object)  # {keypoint: PointState} of the image shown, once redrawn
    # Several objects (animals) on one image: (position of the one edited now among them,
    # how many there are, counting it), with every redraw.
    objects_changed = Signal(int, int)

    def __init__(self, doc: Document, canvas: ImageCanvas, parent: QObject | None = None):
        super().__init__(parent)
        self.doc, self.canvas = doc, canvas
        self.image_id: int | None = None
        self.keypoint: str | None = None
        self.selected: str | None = None
        self.instance = 0
        self._nudge_gesture: int | None = None
        # The other images the sanity hints compare with: read once, kept until they change.
        self._references: list[Instance] | None = None
        canvas.clicked_empty.connect(self._on_canvas_clicked_empty)
        canvas.marker_clicked.connect(self._on_canvas_marker_clicked)
        canvas.marker_dragged.connect(self._on_canvas_marker_dragged)
        canvas.marker_right_clicked.connect(self._on_canvas_marker_right_clicked)
        doc.labels_changed.connect(self._on_doc_labels_changed)
        doc.skeleton_changed.connect(self._on_doc_skeleton_changed)
        doc.images_changed.connect(self._forget_references)

    def detach(self) -> None:
        """Stop listening (the project is closing); the time on the image shown is written."""
        self.doc.image_shown(None)
        self.canvas.clicked_empty.disconnect(self._on_canvas_clicked_empty)
        self.canvas.marker_clicked.disconnect(self._on_canvas_marker_clicked)
        self.canvas.marker_dragged.disconnect(self._on_canvas_marker_dragged)
        self.canvas.marker_right_clicked.disconnect(self._on_canvas_marker_right_clicked)

    # -- state ----------------------------------------------------------------------------
    def show_image(self, image_id: int | None) -> None:
        """Make `image_id` current (its pixels arrive separately through the image loader)."""
        self.doc.image_shown(image_id)  # the time spent on the image left is recorded
        self.image_id, self.selected, self._nudge_gesture = image_id, None, None
        self.instance = 0  # each image starts on its first object
        self._references = None  # the sample leaves out the image shown, which changed
        self.choose_keypoint(self._first_unlabeled() or self._first_keypoint())
        self.refresh()
        self.image_changed.emit(-1 if image_id is None else image_id)

    def label_new_object(self) -> int:
        """Start labeling another object (animal) on this image: the next instance number
        after those labeled; clicks then place its keypoints from the first. Returns it."""
        if self.image_id is None:
            return self.instance
        labeled = {lab.instance for lab in self.doc.labels(self.image_id)}
        if self.instance not in labeled:
            return self.instance  # the new object has no point yet: stay on it
        self._switch_object(max(labeled) + 1)
        return self.instance

    def objects(self, labels=None) -> list[int]:
        """The instance numbers of the image's objects, with the one edited now (which may have
        no point yet); `labels`: the image's labels, when already read."""
        if self.image_id is None:
            return [self.instance]
        labels = self.doc.labels(self.image_id) if labels is None else labels
        return sorted({lab.instance for lab in labels} | {self.instance})

    def next_object(self, step: int = 1) -> int:
        """Edit the next (step 1) or previous (-1) object of this image, cycling; returns it."""
        objects = self.objects()
        target = objects[(objects.index(self.instance) + step) % len(objects)]
        if target != self.instance:
            self._switch_object(target)
        return self.instance

    def _switch_object(self, instance: int) -> None:
        """Clicks now label `instance`: from its first keypoint not labeled yet."""
        self.instance, self.selected, self._nudge_gesture = instance, None, None
        self.canvas.set_selected(None, None)
        self.choose_keypoint(self._first_unlabeled() or self._first_keypoint())
        self.selection_changed.emit("")
        self.refresh()  # the keypoint list shows this object's points

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
        return self.doc.points(self.image_id, self.instance)

    # -- edits ------------------------------------------------------------------------------
    @Slot(float, float)
    def _on_canvas_clicked_empty(self, x: float, y: float) -> None:
        if self.image_id is None or not self.keypoint:
            return
        placed = self.keypoint
        self.selected = placed  # before the edit: its one redraw shows the selection
        self.doc.place_point(self.image_id, placed, x, y, self.instance)
        # Advance to the next keypoint still to label, in skeleton order after this one.
        self.choose_keypoint(self._first_unlabeled(after=placed) or placed)

    @Slot(int, str)
    def _on_canvas_marker_clicked(self, instance: int, keypoint: str) -> None:
        other = instance != self.instance
        self.instance, self.selected = instance, keypoint
        self._nudge_gesture = None  # a new selection starts a new run of nudges
        self.canvas.set_selected(instance, keypoint)
        self.selection_changed.emit(keypoint)
        if other:  # another animal's point: the keypoint list now shows that animal
            self.refresh()

    @Slot(int, str)
    def _on_canvas_marker_right_clicked(self, instance: int, keypoint: str) -> None:
        """Right-click on a point: select it and cycle its visibility, like V."""
        self._on_canvas_marker_clicked(instance, keypoint)
        self.cycle_visibility()

    @Slot(int, str, float, float, bool)
    def _on_canvas_marker_dragged(self, instance: int, keypoint: str, x: float, y: float,
                                  finished: bool) -> None:  # fmt: skip
        # The canvas moves its marker live; the label is written once, when the drag ends
        # (writing every mouse move cost a transaction and a redraw per event).
        if self.image_id is None or not finished:
            return
        self.doc.move_point(self.image_id, keypoint, x, y, instance)

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
        absent = {(self.instance, name): PointState.absent()}
        self.doc.paste_points(self.image_id, absent, f"Mark {name} absent")
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
        """Redraw the image's labels and hints from the Document (one read of its labels)."""
        skeleton = self.doc.skeleton
        if self.image_id is None or skeleton is None:
            self.canvas.set_markers([], [], {})
            self.points_changed.emit({})
            self.objects_changed.emit(0, 1)
            return
        labels = self.doc.labels(self.image_id)
        objects = self.objects(labels)
        self.objects_changed.emit(objects.index(self.instance), len(objects))
        markers = [Marker(lab.instance, lab.keypoint, lab.x, lab.y, int(lab.visibility))
                   for lab in labels if lab.visibility != Visibility.ABSENT]  # fmt: skip
        colors = dict(zip(skeleton.keypoints, skeleton.colors, strict=True))
        selected = (self.instance, self.selected) if self.selected else None
        self.canvas.show_labels(markers, list(skeleton.edges), colors, selected,
                                self._warnings(labels))  # fmt: skip
        self.points_changed.emit({lab.keypoint: PointState(lab.x, lab.y, lab.visibility,
                                                           lab.source)
                                  for lab in labels if lab.instance == self.instance})  # fmt: skip

    @Slot(int)
    def _on_doc_labels_changed(self, image_id: int) -> None:
        if image_id == self.image_id:
            self.refresh()
        else:
            self._forget_references()

    @Slot()
    def _on_doc_skeleton_changed(self) -> None:
        self._forget_references()
        if self.keypoint not in (self.doc.skeleton.keypoints if self.doc.skeleton else ()):
            self.choose_keypoint(self._first_unlabeled() or self._first_keypoint())
        self.refresh()

    @Slot()
    def _forget_references(self) -> None:
        self._references = None

    def _warnings(self, labels) -> dict[tuple[int, str], str]:
        skeleton = self.doc.skeleton
        current = _instance(skeleton, labels, self.instance)
        if current is None:
            return {}
        if self._references is None:
            # A bounded sample: the hints must stay instant in a project of 100,000 images.
            self._references = []
            for record in self.doc.project.images(status="done", limit=REFERENCE_IMAGES + 1):
                if record.id != self.image_id:
                    inst = _instance(skeleton, self.doc.labels(record.id), self.instance)
                    if inst is not None:
                        self._references.append(inst)
        others = self._references[:REFERENCE_IMAGES]
        found = sanity_warnings(skeleton, current, others)
        return {(self.instance, name): message for name, message in found.items()}

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


def _instance(skeleton, labels, instance: int) -> Instance | None:
    """One instance of an image's labels as arrays (keypoints without a row are absent)."""
    rows = [lab for lab in labels if lab.instance == instance]
    if not rows:
        return None
    inst = Instance.empty(len(skeleton))
    for lab in rows:
        j = skeleton.index(lab.keypoint)
        inst.xy[j] = (lab.x, lab.y)
        inst.visibility[j] = int(lab.visibility)
    return inst
