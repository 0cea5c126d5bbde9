"""The Training dock: run settings, Train / Stop, progress with ETA, live curves, past runs."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)  # fmt: skip

from kpstudio.ml.config import DEFAULT_BATCH_SIZE, DEFAULT_INPUT_SIZE  # no TensorFlow
from kpstudio.ml.events import BatchEnded, EpochEnded, Loading, TrainingStarted  # no TensorFlow

PLANNED_TEXT = "from the plan"


class TrainPanel(QWidget):
    train_requested = Signal(dict)  # settings: arch, input_size, max_minutes, batch_size, augment
    plan_requested = Signal(dict)  # the same settings: explain the plan they give
    stop_requested = Signal()
    active_run_chosen = Signal(str)  # run id to predict and review with
    assist_requested = Signal(dict)  # the settings: train alongside the labeler (Assist)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.arch = QComboBox()
        self.arch.addItems(list(DEFAULT_INPUT_SIZE))
        self.arch.currentTextChanged.connect(self._on_arch_current_text_changed)
        # 0 is "from the plan": the settings the data calls for (kpstudio.core.plan), unless
        # the user sets a number, which is then recorded as an override of the plan.
        self.input_size = QSpinBox(minimum=0, maximum=1024, singleStep=32, value=0)
        self.input_size.setSpecialValueText(PLANNED_TEXT)
        self.minutes = QDoubleSpinBox(minimum=0.1, maximum=600.0, value=10.0, decimals=1)
        self.batch_size = QSpinBox(minimum=0, maximum=256, value=0)
        self.batch_size.setSpecialValueText(PLANNED_TEXT)
        self.augment = QCheckBox("augmentation")
        self.augment.setChecked(True)
        form = QFormLayout()
        form.addRow("Architecture", self.arch)
        form.addRow("Input size", self.input_size)
        form.addRow("Minutes", self.minutes)
        form.addRow("Batch size", self.batch_size)
        form.addRow("", self.augment)

        self.plan_button = QPushButton("Plan")
        self.plan_button.setToolTip("What the labels call for: scale, crops, heatmap stride, "
                                    "batch, augmentation, with a sentence per choice")  # fmt: skip
        self.plan_button.clicked.connect(self._on_plan_button_clicked)
        self.plan_text = QLabel("")
        self.plan_text.setWordWrap(True)
        self.plan_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.train_button = QPushButton("Train")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.train_button.clicked.connect(self._on_train_button_clicked)
        self.stop_button.clicked.connect(self.stop_requested)
        self.assist_button = QPushButton("Assist")
        self.assist_button.setToolTip(
            "Train in the background while you label, starting from the active model: new "
            "and corrected labels join within an epoch, each better model becomes the active "
            "one, and dragging a suggestion re-places the others (Stop ends it)")  # fmt: skip
        self.assist_button.clicked.connect(self._on_assist_button_clicked)
        # Two rows of two: in one row of four the dock's usual width (a 1366-px screen) cut
        # the last button off.
        buttons = QGridLayout()
        buttons.addWidget(self.train_button, 0, 0)
        buttons.addWidget(self.assist_button, 0, 1)
        buttons.addWidget(self.stop_button, 1, 0)
        buttons.addWidget(self.plan_button, 1, 1)

        self.progress = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumHeight(160)
        self.plot.addLegend(offset=(-5, 5))
        self.plot.setLabel("bottom", "epoch")
        self.plot.setLogMode(y=True)
        self.loss_curve = self.plot.plot([], [], pen=pg.mkPen("#1f77b4", width=2), name="loss")
        self.val_curve = self.plot.plot([], [], pen=pg.mkPen("#d62728", width=2),
                                        name="val px error")  # fmt: skip
        self.runs = QListWidget()
        self.runs.setMaximumHeight(120)
        self.runs.setToolTip("Double-click a run (or select it and press the button below) "
                             "to predict and review with its model.")  # fmt: skip
        self.runs.itemDoubleClicked.connect(self._on_runs_item_double_clicked)
        self.runs.currentItemChanged.connect(self._on_runs_current_item_changed)
        self.use_run_button = QPushButton("Use as active model")
        self.use_run_button.setEnabled(False)
        self.use_run_button.clicked.connect(self._on_use_run_button_clicked)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.plan_text)
        layout.addWidget(self.plot, 1)
        layout.addWidget(QLabel("Runs"))
        layout.addWidget(self.runs)
        layout.addWidget(self.use_run_button)
        self._epochs: list[float] = []
        self._losses: list[float] = []
        self._val: list[float] = []

    # -- requests -------------------------------------------------------------------------
    def settings(self) -> dict:
        """The run's settings; None where the plan decides."""
        return {"arch": self.arch.currentText(), "input_size": self.input_size.value() or None,
                "max_minutes": self.minutes.value(), "batch_size": self.batch_size.value() or None,
                "augment": self.augment.isChecked()}  # fmt: skip

    def show_plan(self, sentences: list[str]) -> None:
        """The plan of the next (or running) run, a line per choice."""
        self.plan_text.setText("\n".join(f"• {s}" for s in sentences))

    def _on_train_button_clicked(self) -> None:
        self.train_requested.emit(self.settings())

    def _on_assist_button_clicked(self) -> None:
        self.assist_requested.emit(self.settings())

    def _on_plan_button_clicked(self) -> None:
        self.plan_requested.emit(self.settings())

    def _on_arch_current_text_changed(self, arch: str) -> None:
        # The seed article's model keeps its own settings; the default follows the plan.
        planned = arch == "default"
        self.input_size.setValue(0 if planned else DEFAULT_INPUT_SIZE[arch])
        self.batch_size.setValue(0 if planned else DEFAULT_BATCH_SIZE[arch])

    # -- state shown ------------------------------------------------------------------------
    def set_running(self, running: bool) -> None:
        self.train_button.setEnabled(not running)
        self.assist_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        for widget in (self.arch, self.input_size, self.minutes, self.batch_size, self.augment):
            widget.setEnabled(not running)
        if not running and self.progress.maximum() == 0:
            # Stopped before the first epoch: the busy indicator must not spin on forever.
            self.progress.setRange(0, 1000)
            self.progress.setValue(0)
        if running:
            self._epochs, self._losses, self._val = [], [], []
            self.loss_curve.setData([], [])
            self.val_curve.setData([], [])
            self.progress.setRange(0, 0)  # busy until the first epoch tells the pace
            self.status.setText("loading images…")

    def show_progress(self, event) -> None:
        """Show a training event (kpstudio.ml.events)."""
        if isinstance(event, Loading):
            self.status.setText(f"loading images {event.done}/{event.total}")
        elif isinstance(event, TrainingStarted):
            self.status.setText("first epoch…")
        elif isinstance(event, EpochEnded):
            self._epochs.append(event.epoch)
            self._losses.append(max(event.loss, 1e-6))
            val = event.val_px if math.isfinite(event.val_px) else float("nan")
            self._val.append(val)
            self.loss_curve.setData(self._epochs, self._losses)
            self.val_curve.setData(self._epochs, self._val, connect="finite")
            total = max(event.elapsed_s + event.eta_s, 1e-6)
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * event.elapsed_s / total))
            best = event.best_val_px if event.best_val_px is not None else float("nan")
            self.status.setText(
                f"epoch {event.epoch}: loss {event.loss:.3f}, val {val:.2f} px, "
                f"best {best:.2f} px, ETA {event.eta_s / 60:.1f} min")  # fmt: skip
        elif isinstance(event, BatchEnded) and not self._epochs:
            self.status.setText(f"first epoch: batch {event.batch}/{event.batches}")

    def curve_points(self) -> int:
        return len(self._epochs)

    def set_runs(self, runs, active_id: str | None = None) -> None:
        """Runs (kpstudio.core.runs.RunRecord), newest first, with their status (a run whose
        process died reads "interrupted") and headline metrics; the active model's run is
        marked and bold."""
        self.runs.clear()
        for run in reversed(runs):
            mean = run.metrics.get("mean_px")
            pck = run.metrics.get("pck@5.0px")
            figures = f"{mean:.2f} px, PCK@5px {pck:.2f}" if mean is not None and pck is not None \
                else run.metrics.get("error", "")[:60]  # fmt: skip
            mark = "★ " if run.id == active_id else ""
            item = QListWidgetItem(f"{mark}{run.id}  {run.status}  {figures}")
            item.setData(Qt.ItemDataRole.UserRole, run.id)
            # Only a run that left a model file can become the active model.
            item.setData(Qt.ItemDataRole.UserRole + 1, bool(run.model_path))
            if mark:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
                item.setToolTip("the active model: predictions and review use it")
            self.runs.addItem(item)
        self.use_run_button.setEnabled(False)

    def run_ids(self) -> list[str]:
        return [self.runs.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.runs.count())]

    def _choose(self, item: QListWidgetItem | None) -> None:
        if item is not None and item.data(Qt.ItemDataRole.UserRole + 1):
            self.active_run_chosen.emit(item.data(Qt.ItemDataRole.UserRole))

    def _on_runs_item_double_clicked(self, item: QListWidgetItem) -> None:
        self._choose(item)

    def _on_use_run_button_clicked(self) -> None:
        self._choose(self.runs.currentItem())

    def _on_runs_current_item_changed(self, item, _previous) -> None:
        self.use_run_button.setEnabled(
            item is not None and bool(item.data(Qt.ItemDataRole.UserRole + 1))
        )
