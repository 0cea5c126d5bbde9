"""The File menu's flows: new, open, add images or video frames, import, skeleton (Export…
has a dialog of its own, kpstudio.gui.export_dialog).

Slow parts (scanning images, sampling video, parsing annotation files) run as Tasks off the UI
thread, and so do their writes (image rows, an import's labels) through the project's worker
handle: 100,000 image rows took ~5 s, and an import also hashes every image. The Document
announces what they wrote once the Task has ended.

FileFlows receives what it uses (a dialog parent, the settings, a Document getter, how to open
a project and show an image, a task runner, a status sink), not the window.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

from kpstudio.core.project import DB_NAME
from kpstudio.gui.document import Document

IMPORT_FILTERS = {
    "coco": "COCO keypoints (*.json)",
    "labelme": "labelme JSON (*.json)",
    "dlc": "DeepLabCut CSV (*.csv)",
    "yolo": "YOLO pose data YAML (*.yaml *.yml)",
}


def last_folder(settings: QSettings, key: str) -> str:
    """The folder a file dialog of kind `key` (open, images, export…) last used."""
    return str(settings.value(f"folders/{key}", str(Path.home())))


def remember_folder(settings: QSettings, key: str, path: Path) -> None:
    """Remember `path` (a folder, or a file's folder) for the next `key` file dialog."""
    settings.setValue(f"folders/{key}", str(path if path.is_dir() else path.parent))


class FileFlows:
    def __init__(
        self,
        *,
        dialogs: QWidget,
        settings: QSettings,
        document: Callable[[], Document | None],
        open_project: Callable[[Path], bool],
        current_image: Callable[[], int | None],
        show_image: Callable[[int], None],
        run_task: Callable,
        status: Callable[[str, int], None],
    ):
        """`run_task(title, job, on_done, on_error=None)`: kpstudio.gui.tasks.start_task bound
        to the window; `status(message, ms)`: the status line."""
        self._dialogs, self._settings, self._document = dialogs, settings, document
        self._open_project, self._current_image = open_project, current_image
        self._show_image, self._run_task, self._status = show_image, run_task, status

    def open_project_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self._dialogs, "Open project", last_folder(self._settings, "open")
        )
        if folder:
            remember_folder(self._settings, "open", Path(folder))
            self.open_project_folder(folder)

    def open_project_folder(self, folder: str | Path) -> None:
        if not (Path(folder) / DB_NAME).is_file():
            QMessageBox.warning(
                self._dialogs, "Open project", f"{folder} holds no kpstudio project."
            )
            return
        self._open_project(Path(folder))

    def new_project(self) -> None:
        from kpstudio.core.project import Project
        from kpstudio.core.skeleton import Skeleton

        images = QFileDialog.getExistingDirectory(
            self._dialogs, "Folder of images to label", last_folder(self._settings, "images")
        )
        if not images:
            return
        remember_folder(self._settings, "images", Path(images))
        names, ok = QInputDialog.getText(
            self._dialogs, "New project", "Keypoints in clicking order (comma separated):"
        )
        if not ok or not names.strip():
            return
        try:
            skeleton = Skeleton.create([n for n in names.split(",") if n.strip()])
            folder = Path(images).parent / f"{Path(images).name}-kpstudio"
            Project.create(folder, skeleton).close()
        except Exception as exc:
            QMessageBox.warning(self._dialogs, "New project", str(exc))
            return
        if self._open_project(folder):
            self.add_image_folder(Path(images))

    def add_image_folder(self, folder: Path | None = None) -> None:
        """Scan a folder (every image decoded once, off the UI thread) and add the readable
        ones; the unreadable ones are listed, not fatal."""
        from kpstudio.core.image_reader import scan_folder

        doc = self._document()
        if doc is None:
            QMessageBox.information(self._dialogs, "Add images", "Open or create a project first.")
            return
        if folder is None:
            chosen = QFileDialog.getExistingDirectory(
                self._dialogs, "Add images from folder", last_folder(self._settings, "images")
            )
            if not chosen:
                return
            folder = Path(chosen)
        remember_folder(self._settings, "images", folder)
        added: list[int] = []

        def job(progress, should_stop):
            good, bad = scan_folder(folder, progress=progress)  # a Cancel stops it at a report
            _add_scanned(doc, good, added)
            return good, bad

        def done(result):
            good, bad = result
            message = f"added {len(good)} images from {folder}"
            if bad:
                listed = "\n".join(f"{p.name}: {m}" for p, m in bad[:10])
                QMessageBox.warning(
                    self._dialogs,
                    "Some images could not be read",
                    f"{message}; {len(bad)} could not be read:\n{listed}",
                )
            self._status(message, 5000)

        task = self._run_task(f"Scanning {folder.name}…", job, done)
        task.ended.connect(lambda: self._show_added(doc, added))

    def _show_added(self, doc: Document, added: list) -> None:
        """Once the Task has ended (also after a Cancel that came once the rows were
        written): the image list shows the new images, and the first one opens if none is."""
        if not added or self._document() is not doc:
            return
        doc.worker_added_images()
        if self._current_image() is None:
            self._show_image(doc.images()[0].id)

    def add_video_frames(self) -> None:
        from kpstudio.core.image_reader import scan_image
        from kpstudio.core.video_frames import extract_frames, probe_video

        doc, parent = self._document(), self._dialogs
        if doc is None:
            QMessageBox.information(parent, "Add video frames", "Open or create a project first.")
            return
        videos = "Videos (*.mp4 *.avi *.mov *.mkv *.mpg);;All (*)"
        path, _ = QFileDialog.getOpenFileName(
            parent, "Video to sample frames from", last_folder(self._settings, "video"), videos
        )
        if not path:
            return
        remember_folder(self._settings, "video", Path(path))
        try:
            info = probe_video(path)
        except Exception as exc:
            QMessageBox.warning(parent, "Add video frames", str(exc))
            return
        count, ok = QInputDialog.getInt(
            parent,
            "Add video frames",
            f"{info.frames} frames; how many to label?",
            20,
            1,
            max(1, info.frames),
        )
        if not ok:
            return
        method, ok = QInputDialog.getItem(
            parent,
            "Add video frames",
            "Pick frames",
            ["diverse (k-means on thumbnails)", "evenly spaced"],
            0,
            False,
        )
        if not ok:
            return
        out = doc.project.folder / "frames" / Path(path).stem
        kind = "diverse" if method.startswith("diverse") else "even"
        added: list[int] = []

        def job(progress, should_stop):
            files = extract_frames(
                path, out, count, kind, progress=progress, should_stop=should_stop
            )
            infos = [scan_image(f) for f in files]
            _add_scanned(doc, infos, added)
            return infos

        def done(infos):
            self._status(f"added {len(infos)} frames of {Path(path).name}", 5000)

        task = self._run_task(f"Sampling {count} frames…", job, done)
        task.ended.connect(lambda: self._show_added(doc, added))

    def import_annotations(self) -> None:
        from kpstudio.core.formats import read_labels
        from kpstudio.core.project_transfer import import_labelset

        doc, parent = self._document(), self._dialogs
        if doc is None:
            QMessageBox.information(parent, "Import", "Open or create a project first.")
            return
        fmt, ok = QInputDialog.getItem(
            parent, "Import annotations", "Format", list(IMPORT_FILTERS), 0, False
        )
        if not ok:
            return
        start = last_folder(self._settings, "import")
        path, _ = QFileDialog.getOpenFileName(
            parent, "Import annotations", start, IMPORT_FILTERS[fmt]
        )
        if not path:
            return
        remember_folder(self._settings, "import", Path(path))
        imported: list[dict] = []  # the summary, once the import is written

        def job(progress, should_stop):
            labels = read_labels(fmt, Path(path))
            # Images are hashed (with progress, so Cancel stops there) before anything is
            # written.
            imported.append(
                doc.write_in_worker(lambda store: import_labelset(store, labels, progress=progress))
            )

        def ended():  # after success, or after a Cancel that came once the import was written
            if not imported or self._document() is not doc:
                return
            summary = imported[0]
            doc.worker_imported()  # not undoable: the undo stack starts afresh
            self._status(
                f"imported {summary['images']} images ({summary['labeled_images']} labeled)", 5000
            )

        task = self._run_task(
            f"Importing {Path(path).name}…",
            job,
            lambda _: None,
            lambda message: QMessageBox.warning(parent, "Import", message),
        )
        task.ended.connect(ended)

    def edit_skeleton(self) -> None:
        from kpstudio.gui.skeleton_editor import SkeletonEditorDialog

        doc = self._document()
        if doc is None:
            return
        project = doc.project

        def count_labels(name: str) -> int:
            rows = project.query(
                "SELECT COUNT(*) FROM labels l JOIN keypoints k ON k.id = l.keypoint_id "
                "WHERE k.name = ?",
                (name,),
            )
            return rows[0][0]

        dialog = SkeletonEditorDialog(doc.skeleton, count_labels, self._dialogs)
        if dialog.exec():
            doc.edit_skeleton(*dialog.result_skeleton())


def _add_scanned(doc: Document, infos, added: list) -> None:
    """In a Task's job: add scanned images through the worker's own connection, in short
    transactions (100,000 rows take ~5 s: the user's edits meanwhile must not wait that long).
    Not undoable: adding images changes no label."""
    rows = [(i.path, i.width, i.height, i.sha256) for i in infos]
    added.extend(doc.write_in_worker(lambda store: store.add_images(rows, in_turns=True)))
