"""File → Export…: the active run's model, the dataset's labels and the run's stored
predictions, each written by a Task whose outcome (for a model: its parity check) is shown in
the dialog itself, where the user is looking, rather than in a message box.

TensorFlow is imported inside the model export's job only: importing it takes seconds, and a
user who exports labels or predictions should never wait for it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from kpstudio.core.formats import EXPORT_FORMATS, write_labels
from kpstudio.core.predictions import export_stored_predictions, predicted_image_count
from kpstudio.core.project import Project, ProjectError
from kpstudio.core.project_transfer import export_labelset
from kpstudio.core.runs import get_run
from kpstudio.gui.file_flows import last_folder, remember_folder
from kpstudio.gui.tasks import start_task

# kind → (menu text, file filter, suffix; "" for a folder). The kinds after "kpmodel" are
# kpstudio.ml.export.EXPORT_KINDS, spelled out here because importing that module loads
# TensorFlow; a test keeps the two in step.
MODEL_FORMATS = {
    "kpmodel": ("kpstudio model file (.kpmodel)", "kpstudio model (*.kpmodel)", ".kpmodel"),
    "keras": ("Keras 3 (.keras)", "Keras model (*.keras)", ".keras"),
    "savedmodel": ("TensorFlow SavedModel (a folder)", "SavedModel folder (*)", ""),
    "tflite": ("TFLite, float32 (.tflite)", "TFLite model (*.tflite)", ".tflite"),
    "tflite-fp16": ("TFLite, float16 weights (.tflite)", "TFLite model (*.tflite)", ".tflite"),
    "onnx": ("ONNX (.onnx)", "ONNX model (*.onnx)", ".onnx"),
}
DATASET_FORMATS = {
    "coco": ("COCO keypoints (.json)", "COCO keypoints (*.json)", ".json"),
    "labelme": ("labelme, one JSON per image (into a folder)", "", ""),
    "dlc": ("DeepLabCut CollectedData (.csv)", "DeepLabCut CSV (*.csv)", ".csv"),
    "yolo": ("YOLO pose dataset (into a folder)", "", ""),
    "csv": ("CSV, one row per labeled point (.csv)", "CSV (*.csv)", ".csv"),
}
PREDICTION_FORMATS = {
    ".csv": ("CSV, one row per keypoint (.csv)", "CSV (*.csv)"),
    ".json": ("JSON, one object per image (.json)", "JSON (*.json)"),
}
TOLERANCE_PX = 0.5  # how far a converted model may stray from the app's, in image pixels
_ERROR_STYLE = "color: #b3261e;"
_NOTE_STYLE = "color: palette(dark);"


class ExportDialog(QDialog):
    """Three tabs (Model, Dataset, Predictions). The buttons ask for a path and call
    export_model / export_dataset / export_predictions, which tests call directly."""

    exported = Signal(str)  # the message shown, once an export's thread has ended
    export_failed = Signal(str)

    def __init__(self, window):
        super().__init__(window)
        self._studio = window  # not `window`: QWidget.window() is a method
        self._project = window.doc.project
        self._task = None
        self._describe = str
        self._outcome: tuple[bool, str] | None = None
        try:
            self.run = get_run(self._project)
            no_run = ""
        except ProjectError:
            self.run, no_run = None, "No trained model yet: train one in the Train panel first."
        self.setWindowTitle("Export")
        self.tabs = QTabWidget()
        self.tabs.addTab(self._model_tab(no_run), "Model")
        self.tabs.addTab(self._dataset_tab(), "Dataset")
        self.tabs.addTab(self._predictions_tab(no_run), "Predictions")
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.result_label.setTextFormat(Qt.TextFormat.PlainText)  # paths are not markup
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.result_label)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(580)

    # -- the three tabs ----------------------------------------------------------------------
    def _model_tab(self, no_run: str) -> QWidget:
        self.model_kind = _combo({k: v[0] for k, v in MODEL_FORMATS.items()})
        self.model_button = QPushButton("Export model…")
        self.model_button.clicked.connect(self._on_model_button_clicked)
        if self.run is None:
            about = no_run
        else:
            error = self.run.metrics.get("mean_px")
            about = f"Active model: run {self.run.id} ({self.run.arch}, {self.run.status}"
            split = self.run.metrics.get("split", "val")
            about += f", {error:.2f} px mean {split} error)" if error is not None else ")"
        note = (
            ".kpmodel is kpstudio's own file (the studio, kpstudio predict). Every other format "
            "is checked after conversion: run on sample images and compared with the app's "
            f"model; one that strays over {TOLERANCE_PX} px is not written."
        )
        return self._tab(about, self.model_kind, note, self.model_button, self.run is not None)

    def _dataset_tab(self) -> QWidget:
        self.dataset_format = _combo({f: DATASET_FORMATS[f][0] for f in EXPORT_FORMATS})
        self.dataset_button = QPushButton("Export dataset…")
        self.dataset_button.clicked.connect(self._on_dataset_button_clicked)
        counts = self._project.counts()
        about = f"{counts['images']} images, {counts['labeled_images']} with labels"
        note = "Coordinates are written in each format's own convention (see the README)."
        return self._tab(about, self.dataset_format, note, self.dataset_button, True)

    def _predictions_tab(self, no_run: str) -> QWidget:
        self.predictions_format = _combo({s: v[0] for s, v in PREDICTION_FORMATS.items()})
        self.predictions_button = QPushButton("Export predictions…")
        self.predictions_button.clicked.connect(self._on_predictions_button_clicked)
        count = predicted_image_count(self._project, self.run.id) if self.run else 0
        if self.run is None:
            about = no_run
        elif count:
            about = f"Run {self.run.id} has stored predictions for {count} images."
        else:
            about = (f"Run {self.run.id} has no stored predictions yet: Model → Predict all "
                     "unlabeled images stores them.")  # fmt: skip
        note = "Image paths are relative to the project folder; x, y in image pixels."
        return self._tab(about, self.predictions_format, note, self.predictions_button, count > 0)

    def _tab(self, about: str, choice: QComboBox, note: str, button: QPushButton, enabled: bool):
        page = QWidget()
        layout = QVBoxLayout(page)
        heading = QLabel(about)
        heading.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Format", choice)
        small = QLabel(note)
        small.setWordWrap(True)
        small.setStyleSheet(_NOTE_STYLE)
        layout.addWidget(heading)
        layout.addLayout(form)
        layout.addWidget(small)
        layout.addStretch(1)
        layout.addWidget(button)
        choice.setEnabled(enabled)
        button.setEnabled(enabled)
        page.setProperty("export_enabled", enabled)  # what to restore after a task
        return page

    # -- the exports, drivable without file dialogs ------------------------------------------
    def export_model(self, kind: str, out: str | os.PathLike):
        """Write the active run's model to `out` as `kind` ("kpmodel" or an engine export
        kind); the parity check's result (or the error) shows in the dialog."""
        if kind not in MODEL_FORMATS:
            raise ValueError(f"unknown model format {kind!r}; choose one of {list(MODEL_FORMATS)}")
        if self.run is None:
            raise ProjectError("this project has no trained run to export")
        out, run = Path(out), self.run
        source = run.model_file(self._project)
        labeled = self._project.images(status="done", limit=3) or self._project.images(limit=3)
        paths = [self._project.image_path(record) for record in labeled]

        def job(progress, should_stop):
            if kind == "kpmodel":
                return _copy_file(source, out)
            from kpstudio.ml.export import export_model, with_project_images

            return export_model(source, out, kind=kind, tolerance_px=TOLERANCE_PX,
                                sample_images=with_project_images(paths))  # fmt: skip

        def describe(result) -> str:
            if kind == "kpmodel":
                return f"{out.name}: copied the model file of run {run.id} ({_size(out)})"
            also = "".join(f" and {p.name}" for p in result.also)
            return (f"{result.path.name}{also}: checked with {result.note} on {result.checked_on} "
                    f"sample images, max difference {result.max_px_diff:.2g} px "
                    f"(tolerance {TOLERANCE_PX} px)")  # fmt: skip

        title = "Copying the model file…" if kind == "kpmodel" else f"Exporting {out.name}…"
        return self._start(title, job, describe)

    def export_dataset(self, fmt: str, out: str | os.PathLike):
        """Write the project's images and labels as `fmt` (a file, or a folder for labelme
        and yolo)."""
        out, folder = Path(out), self._project.folder

        def job(progress, should_stop):
            # Its own read-only connection: SQLite connections stay in their thread.
            with Project.open(folder, readonly=True) as project:
                labels = export_labelset(project)
            return write_labels(fmt, labels, out), len(labels.images)

        def describe(result) -> str:
            files, images = result
            more = f" and {len(files) - 1} more files" if len(files) > 1 else ""
            return f"{fmt}: wrote {files[0] if files else out}{more} ({images} images)"

        return self._start(f"Exporting the dataset as {fmt}…", job, describe)

    def export_predictions(self, out: str | os.PathLike):
        """Write the active run's stored predictions to `out` (.csv or .json)."""
        if self.run is None:
            raise ProjectError("this project has no trained run whose predictions to export")
        out, folder, run_id = Path(out), self._project.folder, self.run.id

        def job(progress, should_stop):
            with Project.open(folder, readonly=True) as project:
                return export_stored_predictions(project, run_id, out)

        def describe(count) -> str:
            return f"{out.name}: the predictions of run {run_id} on {count} images"

        return self._start("Exporting predictions…", job, describe)

    @property
    def busy(self) -> bool:
        return self._task is not None

    def result_text(self) -> str:
        return self.result_label.text()

    def reject(self) -> None:
        if self._task is not None:
            return  # its Task is a child of this dialog: closing now would delete it mid-run
        super().reject()

    # -- running one export at a time ---------------------------------------------------------
    def _start(self, title: str, job, describe):
        if self._task is not None:
            raise RuntimeError("an export is already running")
        self._describe = describe
        self._outcome = None
        self._show("Exporting…", _NOTE_STYLE)
        self._set_enabled(False)
        # Not cancellable: a conversion or a file write cannot stop midway, and a Cancel that
        # only dropped the result would leave a written file the dialog never mentions.
        self._task = start_task(self._studio, title, job, self._on_task_done, self._on_task_error,
                                parent=self, cancellable=False)  # fmt: skip
        self._task.ended.connect(self._on_task_ended)
        return self._task

    @Slot(object)
    def _on_task_done(self, result) -> None:
        self._outcome = (True, self._describe(result))

    @Slot(str)
    def _on_task_error(self, message: str) -> None:
        self._outcome = (False, message)

    @Slot()
    def _on_task_ended(self) -> None:
        # Only now is the Task's thread over, so the dialog may close (and delete it).
        self._task = None
        self._set_enabled(True)
        ok, message = self._outcome or (False, "the export ended without a result")
        self._show(message, "" if ok else _ERROR_STYLE)
        if ok:
            self._studio.statusBar().showMessage(f"exported {message}", 8000)
        (self.exported if ok else self.export_failed).emit(message)

    def _show(self, message: str, style: str) -> None:
        self.result_label.setStyleSheet(style)
        self.result_label.setText(message)

    def _set_enabled(self, on: bool) -> None:
        for i in range(self.tabs.count()):
            page = self.tabs.widget(i)
            for child in page.findChildren(QWidget):
                if isinstance(child, (QComboBox, QPushButton)):
                    child.setEnabled(on and bool(page.property("export_enabled")))
        self.buttons.setEnabled(on)

    # -- the buttons: ask for a path, then export --------------------------------------------
    @Slot()
    def _on_model_button_clicked(self) -> None:
        kind = self.model_kind.currentData()
        text, name_filter, suffix = MODEL_FORMATS[kind]
        default = f"{self.run.id}{suffix}" if suffix else f"{self.run.id}-saved_model"
        out = self._ask_file(f"Export model as {text}", default, name_filter, suffix)
        if out is not None:
            self.export_model(kind, out)

    @Slot()
    def _on_dataset_button_clicked(self) -> None:
        fmt = self.dataset_format.currentData()
        text, name_filter, suffix = DATASET_FORMATS[fmt]
        if suffix:
            out = self._ask_file(f"Export dataset as {text}", f"annotations{suffix}",
                                 name_filter, suffix)  # fmt: skip
        else:
            start = last_folder(self._studio.settings, "export")
            chosen = QFileDialog.getExistingDirectory(self, f"Export {text} into", start)
            out = Path(chosen) if chosen else None
            if out is not None:
                remember_folder(self._studio.settings, "export", out)
        if out is not None:
            self.export_dataset(fmt, out)

    @Slot()
    def _on_predictions_button_clicked(self) -> None:
        suffix = self.predictions_format.currentData()
        text, name_filter = PREDICTION_FORMATS[suffix]
        default = f"predictions-{self.run.id}{suffix}"
        out = self._ask_file(f"Export predictions as {text}", default, name_filter, suffix)
        if out is not None:
            self.export_predictions(out)

    def _ask_file(self, title: str, default: str, name_filter: str, suffix: str) -> Path | None:
        start = str(Path(last_folder(self._studio.settings, "export")) / default)
        chosen, _ = QFileDialog.getSaveFileName(self, title, start, name_filter)
        if not chosen:
            return None
        out = Path(chosen)
        if suffix and out.suffix.lower() != suffix:
            out = out.with_name(out.name + suffix)  # Qt's own dialog does not add it
        remember_folder(self._studio.settings, "export", out.parent)
        return out


def open_export_dialog(window) -> None:
    """File → Export…: the dialog, window-modal (open(), not exec(), so it never blocks)."""
    if window.doc is None:
        QMessageBox.information(window, "Export", "Open a project first.")
        return
    dialog = ExportDialog(window)
    dialog.finished.connect(dialog.deleteLater)
    dialog.open()


def _combo(items: dict[str, str]) -> QComboBox:
    combo = QComboBox()
    for key, text in items.items():
        combo.addItem(text, key)
    return combo


def _copy_file(source: Path | None, out: Path) -> Path:
    """Copy beside `out` under a temporary name, then rename: `out` is whole or untouched."""
    if source is None or not source.is_file():
        raise FileNotFoundError(f"{source}: the run's model file is missing")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB"
