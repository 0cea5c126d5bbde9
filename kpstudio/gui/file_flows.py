"""The File menu's flows: new, open, add images or video frames, import, skeleton (Export…
has a dialog of its own, kpstudio.gui.export_dialog).

Slow parts (scanning images, sampling video, parsing annotation files) run as Tasks off the UI
thread, and so do their writes (image rows, an import's labels) through the project's worker
handle: 100,000 image rows took ~5 s, and an import also hashes every image. The window
refreshes when the Task has ended.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from kpstudio.core.project import DB_NAME
from kpstudio.gui.tasks import start_task as _run

IMPORT_FILTERS = {
    "coco": "COCO keypoints (*.json)",
    "labelme": "labelme JSON (*.json)",
    "dlc": "DeepLabCut CSV (*.csv)",
    "yolo": "YOLO pose data YAML (*.yaml *.yml)",
}


def last_folder(window, key: str) -> str:
    """The folder a file dialog of kind `key` (open, images, export…) last used."""
    return str(window.settings.value(f"folders/{key}", str(Path.home())))


def remember_folder(window, key: str, path: Path) -> None:
    """Remember `path` (a folder, or a file's folder) for the next `key` file dialog."""
    window.settings.setValue(f"folders/{key}", str(path if path.is_dir() else path.parent))


def open_project_dialog(window) -> None:
    folder = QFileDialog.getExistingDirectory(window, "Open project", last_folder(window, "open"))
    if folder:
        remember_folder(window, "open", Path(folder))
        open_project_folder(window, folder)


def open_project_folder(window, folder: str | Path) -> None:
    if not (Path(folder) / DB_NAME).is_file():
        QMessageBox.warning(window, "Open project", f"{folder} holds no kpstudio project.")
        return
    window.open_project(folder)


def new_project(window) -> None:
    from kpstudio.core.project import Project
    from kpstudio.core.skeleton import Skeleton

    images = QFileDialog.getExistingDirectory(window, "Folder of images to label",
                                              last_folder(window, "images"))  # fmt: skip
    if not images:
        return
    remember_folder(window, "images", Path(images))
    names, ok = QInputDialog.getText(window, "New project",
                                     "Keypoints in clicking order (comma separated):")  # fmt: skip
    if not ok or not names.strip():
        return
    try:
        skeleton = Skeleton.create([n for n in names.split(",") if n.strip()])
        folder = Path(images).parent / f"{Path(images).name}-kpstudio"
        Project.create(folder, skeleton).close()
    except Exception as exc:
        QMessageBox.warning(window, "New project", str(exc))
        return
    if window.open_project(folder):
        add_image_folder(window, Path(images))


def add_image_folder(window, folder: Path | None = None) -> None:
    """Scan a folder (every image decoded once, off the UI thread) and add the readable ones;
    the unreadable ones are listed, not fatal."""
    from kpstudio.core.image_reader import scan_folder

    if window.doc is None:
        QMessageBox.information(window, "Add images", "Open or create a project first.")
        return
    if folder is None:
        chosen = QFileDialog.getExistingDirectory(window, "Add images from folder",
                                                  last_folder(window, "images"))  # fmt: skip
        if not chosen:
            return
        folder = Path(chosen)
    remember_folder(window, "images", folder)

    doc, added = window.doc, []

    def job(progress, should_stop):
        good, bad = scan_folder(folder, progress=progress)  # a Cancel stops it at a report
        _add_scanned(doc, good, added)
        return good, bad

    def done(result):
        good, bad = result
        message = f"added {len(good)} images from {folder}"
        if bad:
            listed = "\n".join(f"{p.name}: {m}" for p, m in bad[:10])
            QMessageBox.warning(window, "Some images could not be read",
                                f"{message}; {len(bad)} could not be read:\n{listed}")  # fmt: skip
        window.statusBar().showMessage(message, 5000)

    task = _run(window, f"Scanning {folder.name}…", job, done)
    task.ended.connect(lambda: _show_added(window, doc, added))


def _add_scanned(doc, infos, added: list) -> None:
    """In a Task's job: add scanned images through the worker's own connection (100,000 rows
    take ~5 s, too long for the UI thread). Not undoable: adding images changes no label."""
    rows = [(i.path, i.width, i.height, i.sha256) for i in infos]
    added.extend(doc.write_in_worker(lambda store: store.add_images(rows)))


def _show_added(window, doc, added: list) -> None:
    """Once the Task has ended (also after a Cancel that came once the rows were written):
    the image list shows the new images, and the first one opens if none is shown."""
    if not added or window.doc is not doc:
        return
    doc.worker_added_images()
    if window.controller and window.controller.image_id is None:
        window.show_image(window.doc.images()[0].id)


def add_video_frames(window) -> None:
    from kpstudio.core.image_reader import scan_image
    from kpstudio.core.video_frames import extract_frames, probe_video

    if window.doc is None:
        QMessageBox.information(window, "Add video frames", "Open or create a project first.")
        return
    videos = "Videos (*.mp4 *.avi *.mov *.mkv *.mpg);;All (*)"
    path, _ = QFileDialog.getOpenFileName(window, "Video to sample frames from",
                                          last_folder(window, "video"), videos)  # fmt: skip
    if not path:
        return
    remember_folder(window, "video", Path(path))
    try:
        info = probe_video(path)
    except Exception as exc:
        QMessageBox.warning(window, "Add video frames", str(exc))
        return
    count, ok = QInputDialog.getInt(window, "Add video frames",
                                    f"{info.frames} frames; how many to label?", 20, 1,
                                    max(1, info.frames))  # fmt: skip
    if not ok:
        return
    method, ok = QInputDialog.getItem(window, "Add video frames", "Pick frames",
                                      ["diverse (k-means on thumbnails)", "evenly spaced"],
                                      0, False)  # fmt: skip
    if not ok:
        return
    out = window.doc.project.folder / "frames" / Path(path).stem
    kind = "diverse" if method.startswith("diverse") else "even"

    doc, added = window.doc, []

    def job(progress, should_stop):
        files = extract_frames(path, out, count, kind, progress=progress, should_stop=should_stop)
        infos = [scan_image(f) for f in files]
        _add_scanned(doc, infos, added)
        return infos

    def done(infos):
        window.statusBar().showMessage(f"added {len(infos)} frames of {Path(path).name}", 5000)

    task = _run(window, f"Sampling {count} frames…", job, done)
    task.ended.connect(lambda: _show_added(window, doc, added))


def import_annotations(window) -> None:
    from kpstudio.core.formats import read_labels
    from kpstudio.core.project_transfer import import_labelset

    if window.doc is None:
        QMessageBox.information(window, "Import", "Open or create a project first.")
        return
    fmt, ok = QInputDialog.getItem(window, "Import annotations", "Format",
                                   list(IMPORT_FILTERS), 0, False)  # fmt: skip
    if not ok:
        return
    start = last_folder(window, "import")
    path, _ = QFileDialog.getOpenFileName(window, "Import annotations", start, IMPORT_FILTERS[fmt])
    if not path:
        return
    remember_folder(window, "import", Path(path))

    doc = window.doc
    imported: list[dict] = []  # the summary, once the import is written

    def job(progress, should_stop):
        labels = read_labels(fmt, Path(path))
        # Images are hashed (with progress, so Cancel stops there) before anything is written.
        imported.append(doc.write_in_worker(
            lambda store: import_labelset(store, labels, progress=progress)))  # fmt: skip

    def ended():  # after success, or after a Cancel that came once the import was written
        if not imported or window.doc is not doc:
            return
        summary = imported[0]
        doc.worker_imported()  # not undoable: the undo stack starts afresh
        window.statusBar().showMessage(
            f"imported {summary['images']} images ({summary['labeled_images']} labeled)", 5000
        )

    task = _run(window, f"Importing {Path(path).name}…", job, lambda _: None,
                lambda message: QMessageBox.warning(window, "Import", message))  # fmt: skip
    task.ended.connect(ended)


def edit_skeleton(window) -> None:
    from kpstudio.gui.skeleton_editor import SkeletonEditorDialog

    if window.doc is None:
        return
    project = window.doc.project

    def count_labels(name: str) -> int:
        rows = project.query(
            "SELECT COUNT(*) FROM labels l JOIN keypoints k ON k.id = l.keypoint_id "
            "WHERE k.name = ?", (name,))  # fmt: skip
        return rows[0][0]

    dialog = SkeletonEditorDialog(window.doc.skeleton, count_labels, window)
    if dialog.exec():
        window.doc.edit_skeleton(*dialog.result_skeleton())
