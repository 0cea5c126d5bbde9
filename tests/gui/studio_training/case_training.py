"""Train from the studio: live progress and curves, preview overlay, labeling meanwhile, Stop,
the run listed and recorded, and closing the window mid-training."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
pytest.importorskip("pytestqt")
pytest.importorskip("tensorflow")
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from studio_window import train_two_epochs_and_stop, window  # noqa: E402, F401 - shared

from kpstudio.core.runs import list_runs  # noqa: E402


def test_train_stop_review_from_the_window(qtbot, window):
    panel = window.train_panel
    labeled = next(r.id for r in window.doc.images() if r.status == "done")
    window.show_image(labeled)
    qtbot.waitUntil(lambda: window.canvas.image_size() is not None)
    QTest.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    assert window.training.running and not panel.train_button.isEnabled()
    qtbot.waitUntil(lambda: panel.curve_points() >= 2, timeout=90_000)
    assert window.canvas._predictions  # the current image's prediction is drawn
    assert panel.progress.maximum() == 1000 and panel.progress.value() > 0

    # Labeling goes on while training runs.
    unlabeled = next(r.id for r in window.doc.images() if r.status == "unlabeled")
    window.show_image(unlabeled)
    qtbot.waitUntil(lambda: window.canvas.image_size() is not None)
    spot = window.canvas.view_pos_for(60, 70)
    QTest.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, spot)  # fmt: skip
    assert window.doc.labels(unlabeled)

    QTest.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.training.running, timeout=15_000)
    qtbot.waitUntil(lambda: panel.train_button.isEnabled(), timeout=5_000)
    runs = list_runs(window.doc.project)
    assert runs[-1].status == "stopped" and runs[-1].model_file(window.doc.project).is_file()
    assert panel.runs.count() == 1 and "stopped" in panel.runs.item(0).text()


def test_closing_the_window_while_training_joins_the_worker(qtbot, window):
    QTest.mouseClick(window.train_panel.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.train_panel.curve_points() >= 1, timeout=90_000)
    thread = window.training.thread
    window.close()
    assert not thread.isRunning()


def test_predict_accept_and_undo(qtbot, window):
    train_two_epochs_and_stop(qtbot, window)

    unlabeled = next(r.id for r in window.doc.images() if r.status == "unlabeled")
    window.show_image(unlabeled)
    qtbot.waitUntil(lambda: window.canvas.image_size() is not None)
    window.actions_by_name["predict"].trigger()
    qtbot.waitUntil(lambda: window.review.prediction is not None, timeout=60_000)
    assert len(window.canvas._predictions) == len(window.doc.skeleton)
    window.actions_by_name["accept"].trigger()
    labels = window.doc.labels(unlabeled)
    assert len(labels) == len(window.doc.skeleton)
    assert {lab.source for lab in labels} == {"prediction-accepted"}
    assert window.doc.undo_stack.undoText() == "Accept prediction"
    window.doc.undo_stack.undo()
    assert window.doc.labels(unlabeled) == []
