"""The studio window: wires the canvas, the panels, the Document and the actions together.

It owns no labeling logic (kpstudio.gui.labeling) and no file flows (kpstudio.gui.file_flows);
menus and shortcuts are built in kpstudio.gui.window_actions.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QMessageBox, QScrollArea, QWidget

from kpstudio import __version__, resource_path
from kpstudio.core.project import Project
from kpstudio.gui.canvas import ImageCanvas
from kpstudio.gui.document import Document
from kpstudio.gui.file_flows import FileFlows
from kpstudio.gui.image_list import ImageListPanel
from kpstudio.gui.image_loader import ImageLoader
from kpstudio.gui.keypoint_panel import KeypointPanel
from kpstudio.gui.labeling import LabelingController
from kpstudio.gui.prediction_overlay import PredictionOverlay
from kpstudio.gui.review import ReviewController
from kpstudio.gui.review_panel import ReviewPanel
from kpstudio.gui.tasks import start_task
from kpstudio.gui.train_panel import TrainPanel
from kpstudio.gui.training_controller import TrainingController
from kpstudio.gui.video_player import VideoPlayer
from kpstudio.gui.window_layout import fit_docks_to_canvas, reset_layout, restore_layout

MAX_RECENT = 8


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None):
        super().__init__()
        self.settings = settings or QSettings("kpstudio", "kpstudio")
        self.setWindowTitle("kpstudio")
        self.setWindowIcon(QIcon(str(resource_path("kpstudio.svg"))))
        self.setAcceptDrops(True)
        self.doc: Document | None = None
        self.controller: LabelingController | None = None
        self.image_list: ImageListPanel | None = None
        self.tasks: list = []

        self.canvas = ImageCanvas(self)
        self.setCentralWidget(self.canvas)
        self.loader = ImageLoader(self)
        self.loader.loaded.connect(self._on_loader_loaded)
        self.loader.failed.connect(self._on_loader_failed)
        self.keypoints = KeypointPanel(self)
        self.keypoints.keypoint_chosen.connect(self._on_keypoints_keypoint_chosen)
        self.keypoints.object_step.connect(self._on_keypoints_object_step)
        self.list_dock = self._dock("Images", "images", Qt.DockWidgetArea.LeftDockWidgetArea)
        self.keypoint_dock = self._dock("Keypoints", "keypoints",
                                        Qt.DockWidgetArea.RightDockWidgetArea)  # fmt: skip
        self.keypoint_dock.setWidget(self.keypoints)
        self.train_panel = TrainPanel(self)
        self.train_dock = self._dock("Training", "training", Qt.DockWidgetArea.RightDockWidgetArea)
        self.train_dock.setWidget(_scrolling(self.train_panel))
        # The one owner of the prediction drawn over the image (review, training preview).
        self.overlay = PredictionOverlay(self.canvas, self._keypoint_names, self.current_image,
                                         self.show_status, self)  # fmt: skip
        self.training = TrainingController(
            self.train_panel, document=lambda: self.doc, current_image=self.current_image,
            show_status=self.show_status, show_preview=self.overlay.show_prediction, parent=self,
        )  # fmt: skip
        self.review = ReviewController(
            document=lambda: self.doc,
            current_image=self.current_image,
            overlay=self.overlay,
            pixels=self.loader.cached,
            selected_images=self._selected_images,
            run_task=self.run_task,
            status=self.show_status,
            dialogs=self,
        )
        self.canvas.suggestion_dropped.connect(self.review.take_suggestion)
        self.training.model_published.connect(self.review.use_predictor)
        self.file_flows = FileFlows(
            dialogs=self,
            settings=self.settings,
            document=lambda: self.doc,
            open_project=self.open_project,
            current_image=self.current_image,
            show_image=self.show_image,
            run_task=self.run_task,
            status=self.show_status,
        )
        self.review_panel = ReviewPanel(self)
        self.review_panel.image_chosen.connect(self.show_image)
        self.review_dock = self._dock("Review", "review", Qt.DockWidgetArea.RightDockWidgetArea)
        self.review_dock.setWidget(_scrolling(self.review_panel))
        # The ranking and error bars follow the runs: refreshed when one starts or ends.
        self.training.runs_changed.connect(self._on_training_runs_changed)

        self.status_image, self.status_zoom = QLabel(), QLabel()
        self.status_cursor, self.status_keypoint = QLabel(), QLabel()
        for label in (self.status_image, self.status_keypoint, self.status_cursor,
                      self.status_zoom):  # fmt: skip
            self.statusBar().addPermanentWidget(label)
        self.canvas.cursor_moved.connect(self._on_canvas_cursor_moved)
        self.canvas.zoom_changed.connect(self._on_canvas_zoom_changed)

        from kpstudio.gui.window_actions import build_actions

        self.actions_by_name = build_actions(self)
        restore_layout(self, self.settings.value("window/geometry"),
                       self.settings.value("window/state"))  # fmt: skip
        self._shown_once = False

    def _dock(self, title: str, name: str, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)  # saveState needs names
        self.addDockWidget(area, dock)
        return dock

    # -- the project ------------------------------------------------------------------------
    def open_project(self, folder: str | Path) -> bool:
        """Open a project for labeling; a clear message (not a crash) when it cannot be."""
        try:
            project = Project.open(folder)
        except Exception as exc:  # lock held elsewhere, not a project, newer schema...
            QMessageBox.warning(self, "Cannot open project", str(exc))
            return False
        self.close_project()
        self.doc = Document(project, self)
        self.controller = LabelingController(self.doc, self.canvas, self)
        self.controller.current_keypoint_changed.connect(self._on_controller_keypoint_changed)
        self.controller.points_changed.connect(self._on_controller_points_changed)
        self.controller.objects_changed.connect(self.keypoints.set_objects)
        self.doc.skeleton_changed.connect(self._on_doc_skeleton_changed)
        self.doc.predictions_stored.connect(self._on_doc_predictions_stored)
        self.review.attach(self.doc)
        self.image_list = ImageListPanel(self.doc, self)
        self.image_list.image_activated.connect(self.show_image)
        self.list_dock.setWidget(self.image_list)
        self.keypoints.set_skeleton(self.doc.skeleton)
        from kpstudio.gui.window_actions import bind_undo_actions

        bind_undo_actions(self, self.doc.undo_stack)
        self.setWindowTitle(f"kpstudio — {project.folder.name}")
        self._remember_recent(project.folder)
        self.training.refresh_runs()
        self.review_panel.refresh(self.doc)
        images = self.doc.images()
        if images:
            self.show_image(images[0].id)
        return True

    def close_project(self) -> None:
        if self.doc is None:
            return
        for player in self.findChildren(VideoPlayer):  # it adds frames to this project
            player.close()
        self.training.stop_and_wait()
        self.canvas.set_image(None)
        self.canvas.set_markers([], [], {})
        self.overlay.clear()
        self.review_panel.refresh(None)
        self.controller.detach()
        self.controller.deleteLater()
        self.doc.project.close()  # every edit is already on disk: closing only frees the lock
        self.doc.deleteLater()
        self.doc = self.controller = None
        self.setWindowTitle("kpstudio")

    # -- navigation -------------------------------------------------------------------------
    @Slot(int)
    def show_image(self, image_id: int) -> None:
        if self.doc is None or self.controller is None:
            return
        record = self.doc.image(image_id)
        path = self.doc.project.image_path(record)
        cached = self.loader.cached(image_id, path)
        # Never show this image's labels over the previous image's pixels: a click then would
        # label the wrong picture. Until the pixels arrive, the canvas is empty.
        self.canvas.set_image(cached)
        self.overlay.clear()
        self.controller.show_image(image_id)
        self.review.on_image_shown(image_id)
        self.image_list.set_current(image_id)
        self.loader.request(image_id, path)
        self._prefetch_neighbours(image_id)
        self.status_image.setText(f"{record.path}  {record.width}×{record.height}")

    def current_image(self) -> int | None:
        """The id of the image shown and edited now, or None."""
        return self.controller.image_id if self.controller is not None else None

    def show_status(self, message: str, milliseconds: int = 5000) -> None:
        self.statusBar().showMessage(message, milliseconds)

    def run_task(self, title: str, job, on_done, on_error=None):
        """A Task of this window (cancelled and joined when it closes); see start_task."""
        return start_task(self, title, job, on_done, on_error)

    def _keypoint_names(self) -> tuple[str, ...]:
        skeleton = self.doc.skeleton if self.doc is not None else None
        return tuple(skeleton.keypoints) if skeleton else ()

    def _selected_images(self) -> list[int]:
        return self.image_list.selected_ids() if self.image_list is not None else []

    def reset_layout(self) -> None:
        reset_layout(self)

    def _prefetch_neighbours(self, image_id: int) -> None:
        # Decode the next and previous images ahead, so paging through is instant.
        for step in (1, -1):
            other = self.image_list.neighbour(image_id, step)
            if other is not None:
                self.loader.prefetch(other, self.doc.project.image_path(self.doc.image(other)))

    def step_image(self, step: int) -> None:
        if self.image_list and self.controller and self.controller.image_id is not None:
            target = self.image_list.neighbour(self.controller.image_id, step)
            if target is not None:
                self.show_image(target)

    def next_unlabeled(self) -> None:
        if self.image_list and self.controller:
            target = self.image_list.next_unlabeled(self.controller.image_id)
            if target is not None:
                self.show_image(target)

    def copy_previous_labels(self) -> None:
        if not (self.image_list and self.controller and self.controller.image_id is not None):
            return
        previous = self.image_list.neighbour(self.controller.image_id, -1)
        if previous is not None:
            n = self.controller.copy_from(previous)
            self.statusBar().showMessage(f"copied {n} labels from the previous image", 3000)

    # -- slots ------------------------------------------------------------------------------
    @Slot(int, object)
    def _on_loader_loaded(self, image_id: int, image) -> None:
        if self.controller and image_id == self.controller.image_id:
            self.canvas.set_image(image)
            self.controller.refresh()

    @Slot(int, str)
    def _on_loader_failed(self, image_id: int, message: str) -> None:
        if self.doc is not None:
            self.doc.mark_unreadable(image_id)
        self.statusBar().showMessage(message, 10000)

    @Slot(object)
    def _on_controller_points_changed(self, points: dict) -> None:
        self.keypoints.set_states({k: int(s.visibility) for k, s in points.items()})

    @Slot()
    def _on_doc_skeleton_changed(self) -> None:
        self.keypoints.set_skeleton(self.doc.skeleton)
        self._on_controller_points_changed(self.controller.states() if self.controller else {})

    @Slot(str, object)
    def _on_doc_predictions_stored(self, run_id: str, image_ids: list) -> None:
        self.review_panel.refresh(self.doc)

    @Slot()
    def _on_training_runs_changed(self) -> None:
        self.review_panel.refresh(self.doc)

    @Slot(str)
    def _on_keypoints_keypoint_chosen(self, name: str) -> None:
        if self.controller:
            self.controller.choose_keypoint(name)

    @Slot(int)
    def _on_keypoints_object_step(self, step: int) -> None:
        if self.controller:
            self.controller.next_object(step)

    @Slot(str)
    def _on_controller_keypoint_changed(self, name: str) -> None:
        self.keypoints.set_current(name or None)
        self.status_keypoint.setText(f"placing: {name}" if name else "")

    @Slot(float, float)
    def _on_canvas_cursor_moved(self, x: float, y: float) -> None:
        self.status_cursor.setText("" if x != x else f"x {x:.1f}  y {y:.1f}")

    @Slot(float)
    def _on_canvas_zoom_changed(self, zoom: float) -> None:
        self.status_zoom.setText(f"{zoom * 100:.0f} %")

    # -- settings, drops, closing -------------------------------------------------------------
    def recent_projects(self) -> list[str]:
        value = self.settings.value("recent/projects") or []
        return [value] if isinstance(value, str) else list(value)

    def _remember_recent(self, folder: Path) -> None:
        recent = [str(folder)] + [p for p in self.recent_projects() if p != str(folder)]
        self.settings.setValue("recent/projects", recent[:MAX_RECENT])

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        for url in event.mimeData().urls():
            path = Path(url.toLocalFile())
            if path.is_dir():
                self.file_flows.add_image_folder(path)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if not self._shown_once:  # dock sizes are real only once the window is laid out
            self._shown_once = True
            fit_docks_to_canvas(self)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.training.stop_and_wait()  # join the worker: no "QThread destroyed while running"
        for task in list(self.tasks):
            task.cancel_and_wait()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.close_project()
        super().closeEvent(event)

    @staticmethod
    def about_text() -> str:
        return f"kpstudio {__version__}: label keypoints, train, review, export."


def _scrolling(panel: QWidget) -> QScrollArea:
    """`panel` in a scroll area: a short dock scrolls instead of forcing the window's height."""
    area = QScrollArea()
    area.setWidget(panel)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area
