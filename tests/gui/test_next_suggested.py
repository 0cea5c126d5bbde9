"""Go → Next suggested image: unlabeled images chosen in a Task, walked through one by one."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtGui import QKeySequence  # noqa: E402

import kpstudio.gui.next_suggested as next_suggested  # noqa: E402


def test_next_suggested_shows_unlabeled_images_chosen_off_the_ui_thread(qtbot, window, monkeypatch):
    threads = []
    features = next_suggested.image_features

    def recorded(*args, **kwargs):
        threads.append(threading.current_thread() is threading.main_thread())
        return features(*args, **kwargs)

    monkeypatch.setattr(next_suggested, "image_features", recorded)
    action = window.actions_by_name["next_suggested"]
    assert action.shortcut() == QKeySequence("Ctrl+J")
    unlabeled = {r.id for r in window.doc.images() if r.status == "unlabeled"}
    start = window.current_image()
    action.trigger()
    qtbot.waitUntil(lambda: window.current_image() in unlabeled, timeout=10000)
    assert threads == [False]  # the features were read in the Task's thread
    assert "Suggested:" in window.statusBar().currentMessage()
    seen = [window.current_image()]
    for _ in range(len(unlabeled) - 1):  # the batch is walked through without choosing again
        action.trigger()
        qtbot.waitUntil(lambda: window.current_image() not in seen, timeout=10000)
        seen.append(window.current_image())
    assert set(seen) == unlabeled and threads == [False] and start not in seen


def test_with_an_active_model_its_uncertainty_is_weighed_in(qtbot, window):
    pytest.importorskip("tensorflow")
    from conftest import TINY_PARAMS

    from kpstudio.core.runs import record_run, run_folder
    from kpstudio.ml.model_file import save_model_file
    from kpstudio.ml.models import build_model

    project = window.doc.project
    skeleton = window.doc.skeleton
    model = build_model("default", len(skeleton), 64, **TINY_PARAMS)
    path = save_model_file(run_folder(project.folder, "r1") / "model.kpmodel", model,
                           arch="default", params=TINY_PARAMS, input_size=64,
                           skeleton=skeleton)  # fmt: skip
    record_run(project, "r1", "default", "finished", {}, model_path=path)
    unlabeled = {r.id for r in window.doc.images() if r.status == "unlabeled"}
    window.actions_by_name["next_suggested"].trigger()
    qtbot.waitUntil(lambda: window.current_image() in unlabeled, timeout=60000)
    assert "uncertainty of run r1" in window.next_suggested.rule
    assert window.next_suggested.queue and all(
        s.uncertainty is not None for s in window.next_suggested.queue
    )
