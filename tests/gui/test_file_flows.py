"""The File menu's flows, driven without a window: they get only the collaborators they use."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QWidget  # noqa: E402

from kpstudio.core.project import Project  # noqa: E402
from kpstudio.core.skeleton import Skeleton  # noqa: E402
from kpstudio.gui.document import Document  # noqa: E402
from kpstudio.gui.file_flows import FileFlows  # noqa: E402
from kpstudio.gui.tasks import start_task  # noqa: E402


def test_adding_a_folder_writes_in_a_worker_and_the_document_announces_it(
    qtbot, tmp_path, monkeypatch
):
    images = tmp_path / "frames"
    images.mkdir()
    for i in range(3):
        cv2.imwrite(str(images / f"f{i}.png"), np.full((24, 32, 3), 40 * i, np.uint8))
    (images / "broken.png").write_bytes(b"not an image")
    project = Project.create(tmp_path / "proj", Skeleton.create(["a", "b"]))
    host = QWidget()
    qtbot.addWidget(host)
    doc = Document(project, host)  # owned by Qt, as the window owns its Document
    host.tasks = []  # start_task keeps the running tasks here, as the window does
    shown, said, tasks = [], [], []

    def run_task(*args):
        tasks.append(start_task(host, *args))
        return tasks[-1]

    flows = FileFlows(
        dialogs=host, settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
        document=lambda: doc, open_project=lambda folder: True, current_image=lambda: None,
        show_image=shown.append, run_task=run_task, status=lambda text, ms: said.append(text),
    )  # fmt: skip
    warnings = []
    monkeypatch.setattr("kpstudio.gui.file_flows.QMessageBox.warning",
                        lambda *args: warnings.append(args[2]))  # fmt: skip
    announced = []
    doc.images_changed.connect(lambda: announced.append(True))
    flows.add_image_folder(images)
    qtbot.waitUntil(lambda: not host.tasks, timeout=20_000)  # the Task is over and forgotten
    assert announced == [True]
    assert [r.path for r in doc.images()] == [f"../frames/f{i}.png" for i in range(3)]
    assert shown == [doc.images()[0].id]  # nothing was shown: the first new image opens
    assert said == [f"added 3 images from {images}"]
    assert "broken.png" in warnings[0]
    project.close()
