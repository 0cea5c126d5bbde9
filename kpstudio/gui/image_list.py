"""The image list panel: every image of the project with its status, filterable and sortable
(its model and filter: gui/image_list_model.py).
"""

from __future__ import annotations

import contextlib

from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QVBoxLayout,
    QWidget,
)

from kpstudio.gui.image_list_model import (
    INCOMPLETE,
    STATUSES,
    ImageFilterProxy,
    ImageIdRole,
    ImageListModel,
)


class ImageListPanel(QWidget):
    """The image list dock: filter box, status filter, sort order, counts and the list."""

    image_activated = Signal(int)

    def __init__(self, doc, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = ImageListModel(doc, self)
        self.proxy = ImageFilterProxy(self)
        # Rows do not jump or vanish while the user labels: the filter applies when changed.
        self.proxy.setDynamicSortFilter(False)
        self.proxy.setSourceModel(self.model)
        self._current: int | None = None
        self._quiet = 0

        self.search = QLineEdit(placeholderText="Filter by path…", clearButtonEnabled=True)
        self.status_filter = QComboBox()
        self.status_filter.addItem("All", None)
        for status in STATUSES:
            self.status_filter.addItem(status.capitalize(), status)
        self.sort_order = QComboBox()
        self.sort_order.addItem("Sort by name", "name")
        self.sort_order.addItem("Sort by status", "status")
        self.counts_label = QLabel()
        self.view = QListView()
        self.view.setUniformItemSizes(True)  # no per-row size query: needed at 100k rows
        # Extended: Ctrl/Shift-click picks several images (to predict a selection); the
        # current row stays the image shown.
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setModel(self.proxy)

        combos = QHBoxLayout()
        combos.addWidget(self.status_filter)
        combos.addWidget(self.sort_order)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.search)
        layout.addLayout(combos)
        layout.addWidget(self.counts_label)
        layout.addWidget(self.view)

        # Typing filters after a short pause, not on every key: a pass over 100k rows each.
        self._typing = QTimer(self, singleShot=True, interval=200)
        self._typing.timeout.connect(self._apply_filter)
        self.search.textChanged.connect(lambda _text: self._typing.start())
        self.status_filter.currentIndexChanged.connect(self._apply_filter)
        self.sort_order.currentIndexChanged.connect(self._on_sort_order_changed)
        self.view.selectionModel().currentChanged.connect(self._on_view_current_changed)
        self.model.counts_changed.connect(self._update_counts)
        self.proxy.modelReset.connect(self._restore_current)
        self._update_counts()

    # -- public API ---------------------------------------------------------------------
    def set_current(self, image_id: int) -> None:
        """Select and scroll to an image without emitting image_activated."""
        self._current = image_id
        self._restore_current()

    def current_id(self) -> int | None:
        return self._current

    def selected_ids(self) -> list[int]:
        """The selected images in view order (the current one alone when nothing else is)."""
        rows = sorted(i.row() for i in self.view.selectionModel().selectedIndexes())
        ids = [self._id_at(r) for r in rows]
        if not ids and self._current is not None:
            ids = [self._current]
        return [i for i in ids if i is not None]

    def neighbour(self, image_id: int, step: int) -> int | None:
        """The image `step` rows away in the list as shown (filtered and sorted), or None."""
        row = self._view_row(image_id)
        if row is not None:
            return self._id_at(row + step)
        # Filtered out: walk the source order to the nearest image that is shown.
        source = self.model.row_of(image_id)
        if source is None:
            return None
        source += step
        while 0 <= source < self.model.rowCount():
            if self._shown(source):
                return self.model.record(source).id
            source += step
        return None

    def next_unlabeled(self, image_id: int | None) -> int | None:
        """The next shown image, wrapping, that is unlabeled or partial (None: all done)."""
        n = self.model.rowCount()
        start = self.model.row_of(image_id) if image_id is not None else None
        start = -1 if start is None else start
        # The proxy keeps source order, so walking source rows walks the view order.
        for offset in range(1, n + 1):
            row = (start + offset) % n
            if self.model.record(row).status in INCOMPLETE and self._shown(row):
                return self.model.record(row).id
        return None

    def set_filter_text(self, text: str) -> None:
        """Filter by path at once (the box itself waits for a pause in typing)."""
        self.search.setText(text)
        self._typing.stop()
        self._apply_filter()

    def set_status_filter(self, status: str | None) -> None:
        self.status_filter.setCurrentIndex(max(0, self.status_filter.findData(status)))

    def set_sort(self, key: str) -> None:
        self.sort_order.setCurrentIndex(max(0, self.sort_order.findData(key)))

    def shown_count(self) -> int:
        return self.proxy.rowCount()

    # -- internals ----------------------------------------------------------------------
    def _shown(self, source_row: int) -> bool:
        return self.proxy.mapFromSource(self.model.index(source_row)).isValid()

    def _view_row(self, image_id: int) -> int | None:
        source = self.model.row_of(image_id)
        if source is None:
            return None
        index = self.proxy.mapFromSource(self.model.index(source))
        return index.row() if index.isValid() else None

    def _id_at(self, view_row: int) -> int | None:
        if not 0 <= view_row < self.proxy.rowCount():
            return None
        return self.proxy.index(view_row, 0).data(ImageIdRole)

    @contextlib.contextmanager
    def _quietly(self):
        # Filtering, sorting and resets move Qt's current row too: not the user's choice.
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1

    @Slot()
    def _restore_current(self) -> None:
        row = None if self._current is None else self._view_row(self._current)
        with self._quietly():
            if row is None:
                self.view.selectionModel().clear()
                return
            index = self.proxy.index(row, 0)
            if self.view.selectionModel().currentIndex() == index:
                return  # already there (a Ctrl-click): keep the user's multi-selection
            flag = QItemSelectionModel.SelectionFlag.ClearAndSelect
            self.view.selectionModel().setCurrentIndex(index, flag)
            self.view.scrollTo(index)

    @Slot()
    def _apply_filter(self) -> None:
        with self._quietly():
            self.proxy.set_filter(self.search.text(), self.status_filter.currentData())
        self._restore_current()
        self._update_counts()

    @Slot()
    def _on_sort_order_changed(self) -> None:
        with self._quietly():
            self.model.sort_by(self.sort_order.currentData())
        self._restore_current()

    @Slot(QModelIndex, QModelIndex)
    def _on_view_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if self._quiet or not current.isValid():
            return
        image_id = current.data(ImageIdRole)
        if image_id != self._current:
            self._current = image_id
            self.image_activated.emit(image_id)

    @Slot()
    def _update_counts(self) -> None:
        counts = self.model.counts()
        labeled = counts.get("partial", 0) + counts.get("done", 0)
        text = f"{labeled} of {self.model.rowCount()} labeled"
        if self.proxy.status or self.proxy.text:
            text += f" · {self.proxy.rowCount()} shown"
        self.counts_label.setText(text)
