"""Review from the studio: predict every unlabeled image, rank by confidence and by val error,
open a ranked image with its stored prediction, accept it, undo."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
pytest.importorskip("pytestqt")
pytest.importorskip("tensorflow")
from PySide6.QtCore import QItemSelectionModel, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from studio_window import train_two_epochs_and_stop, window  # noqa: E402, F401 - shared

from kpstudio.core.demo import build_demo_project  # noqa: E402
from kpstudio.core.predictions import (  # noqa: E402
    load_prediction,
    lowest_confidence,
    store_predictions,
)
from kpstudio.core.project import Project  # noqa: E402
from kpstudio.core.runs import get_run, record_run  # noqa: E402
from kpstudio.gui.review_panel import LOW_CONFIDENCE, VAL_ERROR  # noqa: E402


def test_stored_predictions_rank_and_give_way_to_labels(tmp_path):
    folder = tmp_path / "demo"
    build_demo_project(folder, n_images=9)
    with Project.open(folder) as project:
        record_run(project, "r1", "seed", "finished", {})
        k = len(project.skeleton)
        unlabeled = [r.id for r in project.images("unlabeled")][:2]
        a, b = unlabeled
        xy = np.arange(2 * k, dtype=float).reshape(k, 2)
        store_predictions(project, "r1", {a: (xy, np.full(k, 0.9)), b: (xy, np.full(k, 0.2))})
        assert {project.image(a).status, project.image(b).status} == {"predicted"}
        assert [i for i, _ in lowest_confidence(project, "r1")] == [b, a]
        # Predicting again replaces that run's rows, never adds to them.
        store_predictions(project, "r1", {b: (xy, np.full(k, 0.95))})
        assert [i for i, _ in lowest_confidence(project, "r1")] == [a, b]
        project.set_label(a, project.skeleton.keypoints[0], 5.0, 5.0)
        assert [i for i, _ in lowest_confidence(project, "r1", unlabeled_only=True)] == [b]
        project.delete_label(a, project.skeleton.keypoints[0])
        got_xy, conf = load_prediction(project, a)
        assert np.allclose(got_xy, xy) and np.allclose(conf, 0.9)
        assert load_prediction(project, a, run_id="other") is None
        # Labeling a predicted image gives it its label status; removing the labels again
        # gives back 'predicted', as the prediction is still stored.
        name = project.skeleton.keypoints[0]
        project.set_label(a, name, 10.0, 10.0)
        assert project.image(a).status == "partial"
        project.delete_label(a, name)
        assert project.image(a).status == "predicted"
        c = [r.id for r in project.images("unlabeled")][0]
        project.set_label(c, name, 10.0, 10.0)
        project.delete_label(c, name)
        assert project.image(c).status == "unlabeled"


def test_predict_all_rank_open_accept_undo(qtbot, window, monkeypatch):
    train_two_epochs_and_stop(qtbot, window)
    storing_threads = []  # predictions are written off the UI thread (100,000 take ~10 s)

    def store(*args):
        storing_threads.append(threading.current_thread())
        store_predictions(*args)

    monkeypatch.setattr("kpstudio.gui.review.store_predictions", store)

    doc, review = window.doc, window.review_panel
    unlabeled = {r.id for r in doc.images() if r.status == "unlabeled"}
    assert unlabeled
    run_id = get_run(doc.project).id
    assert window.train_panel.runs.item(0).text().startswith(f"★ {run_id}")
    assert review.pck_points() == 21  # the PCK curve of the run's val split

    # Predict a selection of two labeled images: stored, their labels and status untouched.
    panel = window.image_list
    labeled = [r.id for r in doc.images() if r.status == "done"][:2]
    selection = panel.view.selectionModel()
    selection.clearSelection()
    for image_id in labeled:
        selection.select(panel.proxy.index(panel._view_row(image_id), 0),
                         QItemSelectionModel.SelectionFlag.Select)  # fmt: skip
    assert set(panel.selected_ids()) == set(labeled)
    window.actions_by_name["predict_selected"].trigger()
    qtbot.waitUntil(lambda: all(load_prediction(doc.project, i) is not None for i in labeled),
                    timeout=60_000)  # fmt: skip
    assert all(doc.image(i).status == "done" for i in labeled)
    review.rank_by.setCurrentText(LOW_CONFIDENCE)
    # Cancelled at once: nothing stored, no status changed.
    window.actions_by_name["predict_unlabeled"].trigger()
    task = window.tasks[-1]
    task.worker.request_stop()
    qtbot.waitUntil(lambda: task not in window.tasks, timeout=60_000)
    assert review.ranking.count() == 0  # labeled images are not "what to label next"
    assert not [r for r in doc.images() if r.status == "predicted"]

    window.actions_by_name["predict_unlabeled"].trigger()
    qtbot.waitUntil(lambda: review.ranking.count() == len(unlabeled), timeout=60_000)
    assert {r.id for r in doc.images() if r.status == "predicted"} == unlabeled
    assert set(review.image_ids()) == unlabeled
    assert "confidence" in review.ranking.item(0).text()
    assert window.image_list.model.counts().get("predicted") == len(unlabeled)
    assert len(storing_threads) == 2 and threading.main_thread() not in storing_threads

    # The least sure image, opened from the ranking, shows its stored prediction.
    first = review.image_ids()[0]
    item = review.ranking.item(0)
    QTest.mouseClick(review.ranking.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier,
                     review.ranking.visualItemRect(item).center())  # fmt: skip
    assert window.controller.image_id == first
    assert len(window.canvas._predictions) == len(doc.skeleton)

    window.actions_by_name["accept"].trigger()
    assert len(doc.labels(first)) == len(doc.skeleton)
    assert doc.image(first).status == "done"
    doc.undo_stack.undo()
    assert doc.labels(first) == []
    assert doc.image(first).status == "predicted"  # its stored prediction is still there

    # Ranked by val error: the labeled val images, worst first, and the per-keypoint bars.
    review.rank_by.setCurrentText(VAL_ERROR)
    val = {r.id for r in doc.images() if r.split == "val" and r.status == "done"}
    assert set(review.image_ids()) == val
    errors = [e["mean_px"] for e in get_run(doc.project).metrics["per_image"]]
    assert review.ranking.item(0).text().endswith(f"{max(errors):.1f} px")
    assert len(review.bar_heights()) == len(doc.skeleton)
