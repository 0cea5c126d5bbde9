"""The keypoint list: the skeleton's keypoints in clicking order, with what each holds on the
current image, and the keypoint that the next click places."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

# Visibility as stored (COCO's v): 2 visible, 1 occluded, 0 absent; None: not labeled yet.
MARKS = {2: "●", 1: "◐", 0: "✕", None: "○"}
MARK_TIPS = {2: "visible", 1: "occluded", 0: "absent (not in the image)", None: "not labeled yet"}
MARK_COLUMN, NAME_COLUMN, KEY_COLUMN = 0, 1, 2


def shortcut_hint(index: int) -> str:
    """The number key that picks the keypoint at `index`: 1–9, then 0 for the tenth."""
    if index < 9:
        return str(index + 1)
    return "0" if index == 9 else ""


def swatch(color: str, size: int = 12) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class KeypointPanel(QWidget):
    """Keypoints with colour, number key and labeled state; picking one chooses what to place."""

    keypoint_chosen = Signal(str)
    edit_skeleton_requested = Signal()
    object_step = Signal(int)  # -1 / +1: edit the previous / next object of the image

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._items: dict[str, QTreeWidgetItem] = {}
        self._quiet = False

        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["", "Keypoint", "Key"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(MARK_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(NAME_COLUMN, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(KEY_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        self.edit_button = QPushButton("Edit skeleton…")
        # Which object (animal) the marks are of, shown when the image holds several.
        self.object_label = QLabel()
        self.previous_object = QToolButton(text="◀", toolTip="Previous object (Shift+O: next)")
        self.next_object = QToolButton(text="▶", toolTip="Next object on this image (Shift+O)")
        self.object_row = QWidget()
        row = QHBoxLayout(self.object_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.previous_object)
        row.addWidget(self.object_label, 1, Qt.AlignmentFlag.AlignCenter)
        row.addWidget(self.next_object)
        self.object_row.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.object_row)
        layout.addWidget(self.tree)
        layout.addWidget(self.edit_button)

        self.tree.currentItemChanged.connect(self._on_tree_current_item_changed)
        self.edit_button.clicked.connect(self.edit_skeleton_requested)
        self.previous_object.clicked.connect(lambda: self.object_step.emit(-1))
        self.next_object.clicked.connect(lambda: self.object_step.emit(1))

    # -- public API ---------------------------------------------------------------------
    def set_skeleton(self, skeleton) -> None:
        """Show the keypoints of `skeleton` (None: no skeleton yet); all marked not labeled."""
        self._quiet = True
        try:
            self.tree.clear()
            self._items = {}
            if skeleton is None:
                return
            for i, (name, color) in enumerate(zip(skeleton.keypoints, skeleton.colors)):
                item = QTreeWidgetItem(["", name, shortcut_hint(i)])
                item.setIcon(NAME_COLUMN, swatch(color))
                item.setData(NAME_COLUMN, Qt.ItemDataRole.UserRole, name)
                item.setTextAlignment(MARK_COLUMN, Qt.AlignmentFlag.AlignCenter)
                item.setTextAlignment(KEY_COLUMN, Qt.AlignmentFlag.AlignCenter)
                self.tree.addTopLevelItem(item)
                self._items[name] = item
        finally:
            self._quiet = False
        self.set_states({})

    def set_current(self, keypoint: str | None) -> None:
        """Highlight the keypoint the next click places, without emitting keypoint_chosen."""
        self._quiet = True
        try:
            item = self._items.get(keypoint) if keypoint else None
            self.tree.setCurrentItem(item)
            if item is None:
                self.tree.clearSelection()
            else:
                self.tree.scrollToItem(item)
        finally:
            self._quiet = False

    def current(self) -> str | None:
        item = self.tree.currentItem()
        return None if item is None else item.data(NAME_COLUMN, Qt.ItemDataRole.UserRole)

    @Slot(int, int)
    def set_objects(self, position: int, count: int) -> None:
        """The marks are those of object `position` (0-based) of `count` on the image; the row
        saying so shows only when there are several."""
        self.object_label.setText(f"Object {position + 1} of {count}")
        self.object_row.setVisible(count > 1)

    def set_states(self, states: dict[str, int | None]) -> None:
        """What each keypoint holds on the current image, for the object edited now: a
        visibility 0/1/2, or None / left out when it is not labeled yet."""
        for name, item in self._items.items():
            state = states.get(name)
            state = None if state is None else int(state)
            item.setText(MARK_COLUMN, MARKS.get(state, "?"))
            item.setToolTip(MARK_COLUMN, MARK_TIPS.get(state, ""))

    def mark(self, keypoint: str) -> str:
        """The state mark shown for a keypoint (● ◐ ✕ ○)."""
        return self._items[keypoint].text(MARK_COLUMN)

    # -- slots --------------------------------------------------------------------------
    @Slot(QTreeWidgetItem, QTreeWidgetItem)
    def _on_tree_current_item_changed(self, current, _previous) -> None:
        if self._quiet or current is None:
            return
        self.keypoint_chosen.emit(current.data(NAME_COLUMN, Qt.ItemDataRole.UserRole))
