"""File → Export…: the dialog exports the active run's model (its parity check shown), the
dataset and the stored predictions, driven as the buttons drive it."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from conftest import TINY_PARAMS  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QFileDialog, QLabel  # noqa: E402

from kpstudio.core.predictions import store_predictions  # noqa: E402
from kpstudio.core.project import Project  # noqa: E402
from kpstudio.core.runs import record_run, run_folder  # noqa: E402
from kpstudio.gui.export_dialog import MODEL_FORMATS, ExportDialog  # noqa: E402
from kpstudio.gui.main_window import MainWindow  # noqa: E402

TF_TIMEOUT_MS = 180_000  # a TFLite conversion of the tiny model takes seconds; CI can be slow


@pytest.fixture
def trained(demo):
    """The demo project with run r1: a tiny untrained model file (any weights check parity)
    and stored predictions for the two first unlabeled images."""
    from kpstudio.ml.model_file import save_model_file
    from kpstudio.ml.models import build_model

    with Project.open(demo) as project:
        skeleton = project.skeleton
        k = len(skeleton.keypoints)
        path = save_model_file(run_folder(demo, "r1") / "model.kpmodel",
                               build_model("default", k, 64, **TINY_PARAMS), arch="default",
                               params=TINY_PARAMS, input_size=64, skeleton=skeleton)  # fmt: skip
        record_run(project, "r1", "default", "finished", {}, model_path=path)
        unlabeled = [r.id for r in project.images("unlabeled")][:2]
        rng = np.random.default_rng(0)
        store_predictions(project, "r1", {i: (rng.uniform(0, 200, (k, 2)), rng.uniform(0, 1, k))
                                          for i in unlabeled})  # fmt: skip
    return demo


def _window(qtbot, tmp_path, folder):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    assert win.open_project(folder)
    return win


@pytest.fixture
def dialog(qtbot, tmp_path, trained):
    win = _window(qtbot, tmp_path, trained)
    dialog = ExportDialog(win)
    qtbot.addWidget(dialog)
    dialog.show()
    yield dialog
    win.close()


def test_model_tab_copies_the_kpmodel_and_shows_the_tflite_parity_check(qtbot, dialog, tmp_path):
    from kpstudio.ml.model_file import load_model_file

    source = dialog.run.model_file(dialog._project)
    copy = tmp_path / "out" / "mine.kpmodel"
    with qtbot.waitSignal(dialog.exported, timeout=TF_TIMEOUT_MS):
        dialog.export_model("kpmodel", copy)
    assert copy.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in copy.parent.iterdir()) == ["mine.kpmodel"]  # no temp left
    manifest, _ = load_model_file(copy)
    assert manifest["skeleton"]["keypoints"][0] == "head"
    assert "mine.kpmodel: copied the model file of run r1" in dialog.result_text()

    with qtbot.waitSignal(dialog.exported, timeout=TF_TIMEOUT_MS):
        dialog.export_model("tflite", tmp_path / "out" / "model.tflite")
    text = dialog.result_text()
    assert text.startswith("model.tflite: checked with ") and "Interpreter" in text
    found = re.search(r"on (\d+) sample images, max difference (\S+) px \(tolerance 0.5", text)
    assert found and int(found[1]) >= 1 and float(found[2]) <= 0.5
    assert (tmp_path / "out" / "model.tflite").stat().st_size > 1000
    assert not dialog.busy and dialog.model_button.isEnabled()


def test_a_failed_model_export_is_shown_in_red_and_writes_nothing(qtbot, dialog, tmp_path):
    folder = tmp_path / "keep"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with qtbot.waitSignal(dialog.export_failed, timeout=TF_TIMEOUT_MS) as failed:
        dialog.export_model("keras", folder)  # a folder that is no SavedModel: refused
    assert "is a folder that is not a SavedModel" in failed.args[0]
    assert dialog.result_text() == failed.args[0] and "color" in dialog.result_label.styleSheet()
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_dataset_and_predictions_tabs_write_their_files(qtbot, dialog, tmp_path):
    with qtbot.waitSignal(dialog.exported, timeout=30_000):
        dialog.export_dataset("coco", tmp_path / "ann.json")
    coco = json.loads((tmp_path / "ann.json").read_text())
    assert len(coco["images"]) == 9 and len(coco["annotations"]) == 6
    assert "(9 images)" in dialog.result_text()

    with qtbot.waitSignal(dialog.exported, timeout=30_000):
        dialog.export_predictions(tmp_path / "preds.csv")
    with open(tmp_path / "preds.csv", newline="") as fp:
        rows = list(csv.DictReader(fp))
    assert len(rows) == 2 * 7 and rows[0]["keypoint"] == "head"
    assert dialog.result_text() == "preds.csv: the predictions of run r1 on 2 images"


def test_the_button_asks_for_a_path_adds_the_suffix_and_remembers_the_folder(
    qtbot, dialog, tmp_path, monkeypatch
):
    asked = []

    def fake_save(parent, title, start, name_filter):
        asked.append((start, name_filter))
        return str(tmp_path / "picked" / "preds"), name_filter

    (tmp_path / "picked").mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake_save))
    dialog.predictions_format.setCurrentIndex(dialog.predictions_format.findData(".json"))
    with qtbot.waitSignal(dialog.exported, timeout=30_000):
        dialog.predictions_button.click()
    assert asked[0][0].endswith("predictions-r1.json") and asked[0][1] == "JSON (*.json)"
    assert len(json.loads((tmp_path / "picked" / "preds.json").read_text())) == 2
    settings = dialog._studio.settings
    assert settings.value("folders/export") == str(tmp_path / "picked")


def test_file_export_opens_the_dialog_and_without_a_run_only_the_dataset_is_offered(
    qtbot, tmp_path, demo
):
    win = _window(qtbot, tmp_path, demo)
    action = win.actions_by_name["export"]
    assert action.text() == "&Export…" and action.shortcut().toString() == "Ctrl+E"
    action.trigger()
    dialog = win.findChild(ExportDialog)
    assert dialog is not None and dialog.isVisible() and dialog.run is None
    assert not dialog.model_button.isEnabled() and not dialog.predictions_button.isEnabled()
    assert dialog.dataset_button.isEnabled()
    model_tab = " ".join(label.text() for label in dialog.tabs.widget(0).findChildren(QLabel))
    assert "No trained model yet" in model_tab
    dialog.reject()
    win.close()


def test_the_model_formats_are_the_engines_export_kinds():
    from kpstudio.ml.export import EXPORT_KINDS

    assert tuple(MODEL_FORMATS) == ("kpmodel", *EXPORT_KINDS)
