"""The skeleton editor: keypoints (add, rename, reorder, delete, colour), edges and left/right
pairs, edited on a copy and checked by `Skeleton.create` when the user presses OK.

Keypoints are tracked by a row id, not by name, while the dialog is open: names may be
half-typed or clash until OK, and renames must follow the keypoint so its labels do too.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from kpstudio.core.skeleton import PALETTE, Skeleton, SkeletonError, normalise_name

_UID = Qt.ItemDataRole.UserRole


@dataclass
class _Row:
    uid: int
    name: str
    origin: str | None  # the name in the skeleton being edited; None for a keypoint added here
    color: str


@dataclass
class _PairSection:
    """The widgets of one pair list (edges, or left/right pairs); plain holder, not a widget."""

    box: QGroupBox
    pairs: list[tuple[int, int]]
    view: QListWidget
    first: QComboBox
    second: QComboBox


def _swatch(color: str) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class SkeletonEditorDialog(QDialog):
    """Edit a copy of `skeleton`; after accept, `result_skeleton()` gives the new one."""

    def __init__(self, skeleton: Skeleton, count_labels: Callable[[str], int],
                 parent: QWidget | None = None,
                 confirm: Callable[[str], bool] | None = None):  # fmt: skip
        super().__init__(parent)
        self.setWindowTitle("Edit skeleton")
        self._original = skeleton
        self._count_labels = count_labels
        self._confirm = confirm or self._ask
        self._uids = itertools.count()
        self._rows = [_Row(next(self._uids), n, n, c)
                      for n, c in zip(skeleton.keypoints, skeleton.colors)]  # fmt: skip
        uid = {r.name: r.uid for r in self._rows}
        self._building = False

        self.keypoint_list = QListWidget()
        triggers = QAbstractItemView.EditTrigger
        self.keypoint_list.setEditTriggers(triggers.DoubleClicked | triggers.EditKeyPressed)
        self.new_name = QLineEdit(placeholderText="New keypoint name")
        add = QPushButton("Add")
        up, down, delete = QPushButton("Up"), QPushButton("Down"), QPushButton("Delete…")
        self.color_button = QPushButton("Colour…")
        self.error_label = QLabel(wordWrap=True)
        self.error_label.setStyleSheet("color: #c62828")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)  # fmt: skip

        keypoints = QGroupBox("Keypoints, in clicking order (double-click to rename)")
        grid = QGridLayout(keypoints)
        grid.addWidget(self.keypoint_list, 0, 0, 1, 4)
        for column, button in enumerate((up, down, delete, self.color_button)):
            grid.addWidget(button, 1, column)
        grid.addWidget(self.new_name, 2, 0, 1, 3)
        grid.addWidget(add, 2, 3)
        self.edges = self._pair_section("Edges (drawn between keypoints)")
        self.flips = self._pair_section("Left/right pairs (swapped by flipping)")
        self.edges.pairs += [(uid[a], uid[b]) for a, b in skeleton.edges]
        self.flips.pairs += [(uid[a], uid[b]) for a, b in skeleton.flip_pairs]
        right = QVBoxLayout()
        for section in (self.edges, self.flips):
            right.addWidget(section.box)
        columns = QHBoxLayout()
        columns.addWidget(keypoints)
        columns.addLayout(right)
        layout = QVBoxLayout(self)
        layout.addLayout(columns)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)

        # Enter adds the typed keypoint rather than pressing OK on a half-edited skeleton.
        add.setDefault(True)
        add.clicked.connect(self._on_add_clicked)
        up.clicked.connect(lambda: self._move_selected(-1))
        down.clicked.connect(lambda: self._move_selected(+1))
        delete.clicked.connect(self._on_delete_clicked)
        self.color_button.clicked.connect(self._on_color_clicked)
        self.keypoint_list.itemChanged.connect(self._on_keypoint_list_item_changed)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self._refresh()

    # -- results ------------------------------------------------------------------------
    def result_skeleton(self) -> tuple[Skeleton, dict[str, str]]:
        """(new skeleton, renames old name → new name) for `Document.edit_skeleton`.

        Raises SkeletonError if the edited skeleton is invalid (accept() never closes then)."""
        return self._build()

    def accept(self) -> None:
        try:
            self._build()
        except SkeletonError as exc:
            self._show_error(f"Cannot use this skeleton: {exc}.")
            return
        super().accept()

    def keypoint_names(self) -> list[str]:
        return [r.name for r in self._rows]

    def edge_names(self) -> list[tuple[str, str]]:
        return [self._names(p) for p in self.edges.pairs]

    def flip_pair_names(self) -> list[tuple[str, str]]:
        return [self._names(p) for p in self.flips.pairs]

    # -- operations (the buttons call these; tests too) ---------------------------------------
    def add_keypoint(self, name: str) -> bool:
        name = normalise_name(name)
        if not name:
            return self._show_error("Type a name for the new keypoint first.")
        used = {r.color for r in self._rows}
        color = next((c for c in PALETTE if c not in used), PALETTE[len(self._rows) % 20])
        self._rows.append(_Row(next(self._uids), name, None, color))
        self._refresh(select=len(self._rows) - 1)
        return True

    def rename_keypoint(self, old: str, new: str) -> bool:
        row = self._row(old)
        if row is None:
            return False
        row.name = new  # clashes and empty names are reported at OK, as the user may go on typing
        self._refresh(select=self._rows.index(row))
        return True

    def move_keypoint(self, name: str, delta: int) -> bool:
        row = self._row(name)
        if row is None:
            return False
        i = self._rows.index(row)
        j = min(max(i + delta, 0), len(self._rows) - 1)
        if i == j:
            return False
        self._rows.insert(j, self._rows.pop(i))
        self._refresh(select=j)
        return True

    def delete_keypoint(self, name: str) -> bool:
        """Delete after confirmation when the keypoint has labels; False if kept."""
        row = self._row(name)
        if row is None:
            return False
        n = self._count_labels(row.origin) if row.origin is not None else 0
        if n and not self._confirm(
            f"Delete keypoint “{row.name}”?\n\n{n} label{'s' if n != 1 else ''} on the images "
            "will be deleted with it (Undo brings them back)."
        ):
            return False
        self._rows.remove(row)
        for section in (self.edges, self.flips):
            section.pairs[:] = [p for p in section.pairs if row.uid not in p]
        self._refresh(select=min(self.keypoint_list.currentRow(), len(self._rows) - 1))
        return True

    def set_color(self, name: str, color: str) -> bool:
        row = self._row(name)
        if row is None or not QColor.isValidColorName(color):
            return False
        row.color = QColor(color).name()  # always #rrggbb, as Skeleton wants
        self._refresh(select=self._rows.index(row))
        return True

    def add_edge(self, a: str, b: str) -> bool:
        return self._add_pair(self.edges, self._row(a), self._row(b))

    def remove_edge(self, a: str, b: str) -> bool:
        return self._remove_pair(self.edges, a, b)

    def add_flip_pair(self, a: str, b: str) -> bool:
        return self._add_pair(self.flips, self._row(a), self._row(b))

    def remove_flip_pair(self, a: str, b: str) -> bool:
        return self._remove_pair(self.flips, a, b)

    # -- internals ----------------------------------------------------------------------
    def _build(self) -> tuple[Skeleton, dict[str, str]]:
        skeleton = Skeleton.create([r.name for r in self._rows],
                                   [self._names(p) for p in self.edges.pairs],
                                   [self._names(p) for p in self.flips.pairs],
                                   [r.color for r in self._rows])  # fmt: skip
        renames = {r.origin: new for r, new in zip(self._rows, skeleton.keypoints)
                   if r.origin is not None and r.origin != new}  # fmt: skip
        # The store keeps labels by name: a deleted keypoint whose name another keypoint now
        # has would keep its labels. Renaming it to a name no keypoint can have deletes it.
        kept = {r.origin for r in self._rows}
        for old in self._original.keypoints:
            if old not in kept and old in skeleton.keypoints:
                renames[old] = f"\x00deleted {old}"
        return skeleton, renames

    def _row(self, name: str) -> _Row | None:
        return next((r for r in self._rows if r.name == name), None)

    def _names(self, pair: tuple[int, int]) -> tuple[str, str]:
        by_uid = {r.uid: r.name for r in self._rows}
        return by_uid[pair[0]], by_uid[pair[1]]

    def _add_pair(self, section: _PairSection, first: _Row | None, second: _Row | None) -> bool:
        what = "an edge" if section is self.edges else "a left/right pair"
        if first is None or second is None or first is second:
            return self._show_error(f"Choose two different keypoints for {what}.")
        pair = (first.uid, second.uid)
        if any(set(p) == set(pair) for p in section.pairs):
            return self._show_error(f"{first.name}-{second.name} is already {what}.")
        if section is self.flips and any(set(p) & set(pair) for p in section.pairs):
            return self._show_error("A keypoint can be in only one left/right pair.")
        section.pairs.append(pair)
        self._refresh()
        return True

    def _remove_pair(self, section: _PairSection, a: str, b: str) -> bool:
        first, second = self._row(a), self._row(b)
        if first is None or second is None:
            return False
        before = len(section.pairs)
        section.pairs[:] = [p for p in section.pairs if set(p) != {first.uid, second.uid}]
        self._refresh()
        return len(section.pairs) < before

    def _show_error(self, message: str) -> bool:
        self.error_label.setText(message)
        return False

    def _ask(self, message: str) -> bool:
        answer = QMessageBox.question(self, "Delete keypoint", message)
        return answer == QMessageBox.StandardButton.Yes

    def _selected_row(self) -> _Row | None:
        i = self.keypoint_list.currentRow()
        return self._rows[i] if 0 <= i < len(self._rows) else None

    def _pair_section(self, title: str) -> _PairSection:
        box = QGroupBox(title)
        section = _PairSection(box, [], QListWidget(box), QComboBox(box), QComboBox(box))
        add, remove = QPushButton("Add", box), QPushButton("Remove", box)
        grid = QGridLayout(box)
        grid.addWidget(section.view, 0, 0, 1, 3)
        grid.addWidget(section.first, 1, 0)
        grid.addWidget(section.second, 1, 1)
        grid.addWidget(add, 1, 2)
        grid.addWidget(remove, 2, 2)
        add.clicked.connect(lambda: self._on_pair_button(section, add=True))
        remove.clicked.connect(lambda: self._on_pair_button(section, add=False))
        return section

    def _refresh(self, select: int | None = -1) -> None:
        """Redraw every list from the state; `select` a keypoint row (-1: keep, None: none)."""
        current = self.keypoint_list.currentRow() if select == -1 else select
        self._building = True
        try:
            self.keypoint_list.clear()
            for row in self._rows:
                item = QListWidgetItem(_swatch(row.color), row.name)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                item.setData(_UID, row.uid)
                self.keypoint_list.addItem(item)
            if current is not None and 0 <= current < len(self._rows):
                self.keypoint_list.setCurrentRow(current)
            for section in (self.edges, self.flips):
                self._refresh_pairs(section)
        finally:
            self._building = False
        selected = self._selected_row()
        self.color_button.setIcon(_swatch(selected.color) if selected else QIcon())

    def _refresh_pairs(self, section: _PairSection) -> None:
        section.view.clear()
        for pair in section.pairs:
            a, b = self._names(pair)
            section.view.addItem(f"{a}  —  {b}")
        for combo in (section.first, section.second):
            keep = combo.currentIndex()
            combo.clear()
            for row in self._rows:
                combo.addItem(row.name, row.uid)
            combo.setCurrentIndex(min(max(keep, 0), combo.count() - 1))

    # -- slots --------------------------------------------------------------------------
    @Slot()
    def _on_add_clicked(self) -> None:
        if self.add_keypoint(self.new_name.text()):
            self.new_name.clear()
            self.error_label.clear()

    @Slot()
    def _on_delete_clicked(self) -> None:
        row = self._selected_row()
        if row is not None:
            self.delete_keypoint(row.name)

    def _move_selected(self, delta: int) -> None:
        row = self._selected_row()
        if row is not None:
            self.move_keypoint(row.name, delta)

    @Slot()
    def _on_color_clicked(self) -> None:
        row = self._selected_row()
        if row is None:
            return
        color = QColorDialog.getColor(QColor(row.color), self, f"Colour of {row.name}")
        if color.isValid():
            self.set_color(row.name, color.name())

    @Slot(QListWidgetItem)
    def _on_keypoint_list_item_changed(self, item: QListWidgetItem) -> None:
        if self._building:
            return
        row = next(r for r in self._rows if r.uid == item.data(_UID))
        row.name = item.text()
        # The list item already shows the new name; rebuilding it under the open editor is
        # unsafe, so only the pair lists and combo boxes are redrawn.
        for section in (self.edges, self.flips):
            self._refresh_pairs(section)

    def _on_pair_button(self, section: _PairSection, add: bool) -> None:
        if add:
            by_uid = {r.uid: r for r in self._rows}
            first = by_uid.get(section.first.currentData())
            self._add_pair(section, first, by_uid.get(section.second.currentData()))
            return
        i = section.view.currentRow()
        if 0 <= i < len(section.pairs):
            del section.pairs[i]
            self._refresh()
