"""The Review dock: images ranked by where the active run does worst, its error per keypoint
and its PCK curve, so the user labels or checks the images that teach the model most."""

from __future__ import annotations

import math
from pathlib import PurePosixPath

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kpstudio.core.predictions import lowest_confidence
from kpstudio.core.project import ProjectError
from kpstudio.core.runs import get_run
from kpstudio.gui.learning_curve_view import LearningCurveView

VAL_ERROR = "val error (labeled)"
LOW_CONFIDENCE = "lowest confidence (unlabeled)"


class ReviewPanel(QWidget):
    image_chosen = Signal(int)  # image id

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._doc = None
        self.rank_by = QComboBox()
        self.rank_by.addItems([VAL_ERROR, LOW_CONFIDENCE])
        self.rank_by.currentTextChanged.connect(self._on_rank_by_current_text_changed)
        form = QFormLayout()
        form.addRow("Rank by", self.rank_by)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.ranking = QListWidget()
        self.ranking.itemClicked.connect(self._on_ranking_item_clicked)
        self.ranking.itemActivated.connect(self._on_ranking_item_clicked)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumHeight(140)
        self.plot.setLabel("left", "mean px error")
        self.plot.setMouseEnabled(x=False, y=False)
        self.bars: pg.BarGraphItem | None = None
        self.pck_plot = pg.PlotWidget(background="w")
        self.pck_plot.setMinimumHeight(140)
        self.pck_plot.setLabel("left", "PCK")
        self.pck_plot.setLabel("bottom", "threshold (fraction of the bbox diagonal)")
        self.pck_plot.setMouseEnabled(x=False, y=False)
        self.pck_plot.setYRange(0.0, 1.0, padding=0.02)
        self.pck_plot.showGrid(x=True, y=True, alpha=0.3)
        self.pck_plot.getAxis("bottom").enableAutoSIPrefix(False)  # 0.05, not 50 (×0.001)
        green = "#2ca02c"
        self.pck_line = self.pck_plot.plot([], [], pen=pg.mkPen(green, width=2), symbol="o",
                                           symbolSize=4, symbolBrush=green)  # fmt: skip

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(self.ranking, 2)
        layout.addWidget(QLabel("Error per keypoint (active run, val split)"))
        layout.addWidget(self.plot, 1)
        layout.addWidget(QLabel("PCK curve (active run, val split)"))
        layout.addWidget(self.pck_plot, 1)
        self.assist = LearningCurveView(self)  # labeling speed and the learning curve
        layout.addWidget(self.assist, 1)

    def refresh(self, doc) -> None:
        """Re-read the active run and the stored predictions of `doc` (a Document or None)."""
        self._doc = doc
        self.ranking.clear()
        self._set_bars([], [])
        self.pck_line.setData([], [])
        self.assist.refresh(doc)
        if doc is None:
            self.status.setText("")
            return
        try:
            run = get_run(doc.project)
        except ProjectError:
            self.status.setText("No trained run yet.")
            return
        self.status.setText(f"active model: run {run.id}{_objects_summary(run.metrics)}")
        per_kp = run.metrics.get("per_keypoint", {})
        names = [n for n in doc.skeleton.keypoints if n in per_kp]
        self._set_bars(names, [per_kp[n].get("mean_px") for n in names])
        curve = run.metrics.get("pck_curve") or {}
        points = [(a, v) for a, v in zip(curve.get("alpha", []), curve.get("pck", []))
                  if v is not None]  # fmt: skip
        if points:
            self.pck_line.setData([a for a, _ in points], [v for _, v in points])
        if self.rank_by.currentText() == VAL_ERROR:
            entries = [(e["image_id"], e.get("mean_px")) for e in run.metrics.get("per_image", [])
                       if "image_id" in e]  # fmt: skip
            entries = [(i, v) for i, v in entries if v is not None and math.isfinite(v)]
            entries.sort(key=lambda e: -e[1])
            self._fill(entries, "{:.1f} px")
        else:
            self._fill(lowest_confidence(doc.project, run.id, unlabeled_only=True),
                       "confidence {:.2f}")  # fmt: skip

    def _fill(self, entries: list[tuple[int, float]], fmt: str) -> None:
        project = self._doc.project
        for image_id, value in entries:
            try:
                record = project.image(image_id)
            except Exception:  # an image removed since the run: nothing to show
                continue
            item = QListWidgetItem(f"{PurePosixPath(record.path).name} — {fmt.format(value)}")
            item.setData(Qt.ItemDataRole.UserRole, image_id)
            item.setToolTip(record.path)
            self.ranking.addItem(item)
        if not entries:
            self.status.setText(self.status.text() + ": nothing to rank yet")

    def image_ids(self) -> list[int]:
        """The ranked image ids, in the order shown."""
        return [self.ranking.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(self.ranking.count())]  # fmt: skip

    def _set_bars(self, names: list[str], values: list) -> None:
        if self.bars is not None:
            self.plot.removeItem(self.bars)
            self.bars = None
        heights = [v if v is not None and math.isfinite(v) else 0.0 for v in values]
        self.plot.getAxis("bottom").setTicks([list(enumerate(names))])
        if names:
            self.bars = pg.BarGraphItem(x=list(range(len(names))), height=heights, width=0.7,
                                        brush="#3a7bd5")  # fmt: skip
            self.plot.addItem(self.bars)

    def pck_points(self) -> int:
        xs, _ = self.pck_line.getData()
        return 0 if xs is None else len(xs)

    def bar_heights(self) -> list[float]:
        return [] if self.bars is None else list(self.bars.opts["height"])

    @Slot(str)
    def _on_rank_by_current_text_changed(self, text: str) -> None:
        self.refresh(self._doc)

    @Slot(QListWidgetItem)
    def _on_ranking_item_clicked(self, item: QListWidgetItem) -> None:
        self.image_chosen.emit(int(item.data(Qt.ItemDataRole.UserRole)))


def _objects_summary(metrics: dict) -> str:
    """For a model that finds several objects per image: how many it found and its AP."""
    if "objects_found" not in metrics:
        return ""
    ap = metrics.get("ap")
    return (f" — found {metrics['objects_found']}/{metrics['objects']} objects, every object "
            f"on {100 * metrics.get('images_all_found', 0):.0f} % of the images"
            + (f", AP {ap:.3f} (OKS σ {metrics.get('oks_sigma', 0.05):g})" if ap is not None
               else "")
            + "; px error on matched objects")  # fmt: skip
