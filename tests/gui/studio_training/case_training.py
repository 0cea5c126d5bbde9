"""Train from the studio: live progress and curves, preview overlay, labeling meanwhile, Stop
(also during the first epoch), the run listed and recorded, and closing the window
mid-training: the run is recorded stopped with its model, as the CLI shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
pytest.importorskip("pytestqt")
pytest.importorskip("tensorflow")
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from studio_window import train_two_epochs_and_stop, window  # noqa: E402, F401 - shared

from kpstudio.core.project import Project  # noqa: E402
from kpstudio.core.runs import get_run, list_runs  # noqa: E402
from kpstudio.ml.events import BatchEnded  # noqa: E402
from kpstudio.ml.predictor import Predictor  # noqa: E402


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


def test_stop_during_the_first_epoch_keeps_a_model_and_no_busy_bar(qtbot, window):
    panel = window.train_panel
    pressed = threading.Event()

    def train(data, config, on_progress, should_stop, run_dir):
        from kpstudio.ml.train import train as real_train

        def report(event):
            on_progress(event)
            if isinstance(event, BatchEnded) and event.epoch == 1:
                pressed.wait(60)  # the user presses Stop while the first epoch trains

        return real_train(data, config, on_progress=report, should_stop=should_stop,
                          run_dir=run_dir)  # fmt: skip

    window.training.train_function = train
    panel.batch_size.setValue(2)  # several batches in an epoch: Stop comes before the second
    QTest.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.status.text().startswith("first epoch: batch 1/"),
                    timeout=90_000)  # fmt: skip
    assert panel.progress.maximum() == 0  # busy: no epoch has told the pace yet
    QTest.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    pressed.set()
    qtbot.waitUntil(lambda: not window.training.running, timeout=60_000)
    qtbot.waitUntil(lambda: panel.train_button.isEnabled(), timeout=5_000)
    assert panel.progress.maximum() > 0 and panel.progress.value() == 0
    run = list_runs(window.doc.project)[-1]
    assert run.status == "stopped" and run.history == []
    assert run.model_file(window.doc.project).is_file()


def test_closing_the_window_mid_training_records_the_run_stopped(qtbot, window):
    folder = window.doc.project.folder
    QTest.mouseClick(window.train_panel.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.train_panel.curve_points() >= 1, timeout=90_000)
    thread, run_id = window.training.thread, window.training.run_id
    window.close()  # mid-way through the next epoch
    assert not thread.isRunning() and window.doc is None
    with Project.open(folder, readonly=True) as project:
        run = get_run(project, run_id)
        assert run.status == "stopped" and len(run.history) >= 1
        assert run.metrics["mean_px"] > 0
        model = run.model_file(project)
    predictor = Predictor.from_file(model)  # the file is whole and loads
    pred = predictor.predict_array(np.zeros((100, 120, 3), np.uint8))
    assert np.isfinite(pred.xy).all()

    def cli(*args):
        result = subprocess.run([sys.executable, "-m", "kpstudio.cli", *map(str, args)],
                                capture_output=True, text=True)  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout

    info = json.loads(cli("info", folder, "--json"))
    assert [(r["id"], r["status"]) for r in info["runs"]] == [(run_id, "stopped")]
    assert f"run       {run_id}  stopped" in cli("info", folder)
    report = json.loads(cli("evaluate", folder, "--run", run_id, "--json"))
    assert report["run"] == run_id and report["mean_px"] == pytest.approx(run.metrics["mean_px"],
                                                                          abs=1e-3)  # fmt: skip


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
