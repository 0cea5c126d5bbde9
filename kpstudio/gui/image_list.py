"""The image list: every image of the project with its status, filterable and sortable.

Fast at 100,000 images: one model row per image (no widget per row), records read once per
reset, a label edit refreshes only its row. The source model sorts (Python's sort), not the
proxy: QSortFilterProxyModel would call the Python `data()` twice per comparison.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter

from PySide6.QtCore import (
    QAbstractListModel,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
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

from kpstudio.core.project import ImageRecord

ImageIdRole = Qt.ItemDataRole.UserRole + 1
StatusRole = Qt.ItemDataRole.UserRole + 2
PathRole = Qt.ItemDataRole.UserRole + 3

STATUSES = ("unlabeled", "partial", "done", "predicted", "unreadable")
STATUS_COLORS = {
    "unlabeled": "#9e9e9e", "partial": "#f5a623", "done": "#2e9d4f",
    "predicted": "#3a7bd5", "unreadable": "#d0021b",
}  # fmt: skip
INCOMPLETE = ("unlabeled", "partial")
# Sorting by status puts the work still to do first.
_STATUS_RANK = {s: i for i, s in enumerate(("unlabeled", "partial", "predicted", "done"))}
_DIGITS = re.compile(r"(\d+)")
_icons: dict[str, QIcon] = {}


def status_icon(status: str) -> QIcon:
    """A small coloured dot for a status; made once per status (QPixmaps need the app)."""
    if status not in _icons:
        pixmap = QPixmap(12, 12)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(STATUS_COLORS.get(status, "#000000")))
        painter.drawEllipse(1, 1, 10, 10)
        painter.end()
        _icons[status] = QIcon(pixmap)
    return _icons[status]


def _natural_key(record: ImageRecord) -> list:
    # frame_2 before frame_10: images sampled from videos are numbered without padding.
    parts = _DIGITS.split(record.path.casefold())
    return [int(p) if i % 2 else p for i, p in enumerate(parts)]


class ImageListModel(QAbstractListModel):
    """One row per image of a Document, kept current through the Document's signals."""

    counts_changed = Signal()

    def __init__(self, doc, parent: QObject | None = None):
        super().__init__(parent)
        self._doc = doc
        self._records: list[ImageRecord] = []
        self._rows: dict[int, int] = {}
        self._counts: Counter[str] = Counter()
        self._sort_key = "name"
        self._load()
        doc.labels_changed.connect(self.refresh_image)
        doc.images_changed.connect(self.reload)
        doc.skeleton_changed.connect(self._on_doc_skeleton_changed)
        doc.predictions_stored.connect(self._on_doc_predictions_stored)

    # -- Qt model interface -------------------------------------------------------------
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._records)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        record = self._records[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return record.path.rpartition("/")[2]
        if role == Qt.ItemDataRole.DecorationRole:
            return status_icon(record.status)
        if role == ImageIdRole:
            return record.id
        if role == StatusRole:
            return record.status
        if role == PathRole:
            return record.path
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"{record.path}\n{record.width} × {record.height} px · {record.split} · "
                    f"{record.status}")  # fmt: skip
        return None

    # -- reading ------------------------------------------------------------------------
    def record(self, row: int) -> ImageRecord:
        return self._records[row]

    def row_of(self, image_id: int) -> int | None:
        return self._rows.get(image_id)

    def counts(self) -> dict[str, int]:
        """Images per status, kept up to date edit by edit."""
        return {status: n for status, n in self._counts.items() if n}

    # -- keeping up with the Document -----------------------------------------------------
    @Slot(int)
    def refresh_image(self, image_id: int) -> None:
        """Re-read one image (its status changed): one query, one row repainted."""
        row = self._rows.get(image_id)
        if row is None:
            return
        old, new = self._records[row], self._doc.image(image_id)
        self._records[row] = new
        if old.status != new.status:
            self._counts[old.status] -= 1
            self._counts[new.status] += 1
            self.counts_changed.emit()
        index = self.index(row)
        self.dataChanged.emit(index, index)

    @Slot()
    def reload(self) -> None:
        """Images were added or removed: read them all again."""
        self.beginResetModel()
        self._load()
        self.endResetModel()
        self.counts_changed.emit()

    @Slot()
    def _on_doc_skeleton_changed(self) -> None:
        # Adding or deleting a keypoint can change the status of every image, without a
        # labels_changed for each: re-read all, repaint in place so selections survive.
        records = {r.id: r for r in self._doc.images()}
        if records.keys() != self._rows.keys():
            self.reload()
            return
        self._records = [records[r.id] for r in self._records]
        self._counts = Counter(r.status for r in self._records)
        if self._records:
            self.dataChanged.emit(self.index(0), self.index(len(self._records) - 1))
        self.counts_changed.emit()

    @Slot(str, object)
    def _on_doc_predictions_stored(self, run_id: str, image_ids: list) -> None:
        # Statuses moved to 'predicted': row by row keeps the selection and scroll, but past a
        # thousand rows one re-read is faster.
        if len(image_ids) <= 1000:
            for image_id in image_ids:
                self.refresh_image(image_id)
        else:
            self.reload()

    def _load(self) -> None:
        self._records = list(self._doc.images())
        self._order()
        self._counts = Counter(r.status for r in self._records)

    def _order(self) -> None:
        if self._sort_key == "status":
            names = {r.id: i for i, r in enumerate(sorted(self._records, key=_natural_key))}
            self._records.sort(key=lambda r: (_STATUS_RANK.get(r.status, 9), names[r.id]))
        else:
            self._records.sort(key=_natural_key)
        self._rows = {r.id: i for i, r in enumerate(self._records)}

    # -- sorting ------------------------------------------------------------------------
    def sort_by(self, key: str) -> None:
        """Order rows by "name" (natural order of the path) or "status" (to-do first)."""
        if key not in ("name", "status"):
            raise ValueError(f"cannot sort images by {key!r}")
        self._sort_key = key
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        ids = [self._records[i.row()].id for i in persistent]
        self._order()
        self.changePersistentIndexList(persistent, [self.index(self._rows[i]) for i in ids])
        self.layoutChanged.emit()


class ImageFilterProxy(QSortFilterProxyModel):
    """Keeps the rows whose status and path match; the order stays the source model's."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.status: str | None = None
        self.text = ""

    def set_filter(self, text: str, status: str | None) -> None:
        if not hasattr(self, "endFilterChange"):  # Qt < 6.10
            self.text, self.status = text.casefold().strip(), status
            self.invalidateRowsFilter()
            return
        self.beginFilterChange()
        self.text, self.status = text.casefold().strip(), status
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, row: int, parent: QModelIndex) -> bool:  # noqa: N802
        if not (self.status or self.text):
            return True
        record = self.sourceModel().record(row)
        if self.status and record.status != self.status:
            return False
        return self.text in record.path.casefold()


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
