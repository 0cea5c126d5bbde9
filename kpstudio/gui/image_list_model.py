"""The image list's model: one row per image of the project with its status, sorted by the
source model (Python's sort), and the proxy that filters it by name and status.

Fast at 100,000 images: one model row per image (no widget per row), records read once per
reset, a label edit refreshes only its row. QSortFilterProxyModel does not sort: it would call
the Python `data()` twice per comparison.
"""

from __future__ import annotations

import re
from collections import Counter

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QSortFilterProxyModel,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

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
