"""The studio's training controller and worker, in-process with a fake `train` (no TensorFlow):
progress and preview shown, Stop, the run's end written from the worker thread, closing the
project mid-training, a failure, a dead run shown as interrupted."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

import kpstudio.core.runs as runs  # noqa: E402
from kpstudio.core.project import Project  # noqa: E402
from kpstudio.core.runs import INTERRUPTED, get_run, list_runs, start_run  # noqa: E402
from kpstudio.gui.train_panel import TrainPanel  # noqa: E402
from kpstudio.gui.training_controller import TrainingController  # noqa: E402
from kpstudio.ml.events import (  # noqa: E402
    BatchEnded,
    EpochEnded,
    Loading,
    Preview,
    TrainingStarted,
)


@dataclass
class FakeResult:
    run_id: str
    status: str
    model_path: Path
    config: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    metrics: dict = field(default_factory=lambda: {"mean_px": 2.5, "pck@5.0px": 0.75})


class FakeTrain:
    """train()'s contract without TensorFlow: reports loading, the start and `epochs` epochs
    (with a preview of the configured image), then batches until Stop; or raises `fail`."""

    def __init__(self, epochs: int = 1, fail: Exception | None = None):
        self.epochs, self.fail = epochs, fail
        self.calls: list[dict] = []

    def __call__(self, data, config, on_progress, should_stop, run_dir):
        self.calls.append({"thread": threading.current_thread(), "run_dir": run_dir})
        on_progress(Loading(len(data), len(data)))
        on_progress(TrainingStarted(1, 8, 2, 100))
        if self.fail:
            raise self.fail
        k = len(data.skeleton)
        history = []
        for epoch in range(1, self.epochs + 1):
            on_progress(BatchEnded(epoch, 100, 1, 2, 0.5))
            preview = Preview(config.preview_image, tuple((10.0 * i, 20.0) for i in range(k)),
                              (0.9,) * k)  # fmt: skip
            event = EpochEnded(epoch, 100, 0.5, 3.0, 3.0, 1e-3, epoch, 60.0, 100.0, preview)
            history.append(event.history_entry())
            on_progress(event)
        batch = 1
        while not should_stop():  # training goes on until Stop
            batch += 1
            on_progress(BatchEnded(self.epochs + 1, 100, batch % 2 + 1, 2, 0.4))
            time.sleep(0.01)
        model = run_dir / "model.kpmodel"
        model.write_bytes(b"weights")
        return FakeResult(run_dir.name, "stopped", model, config.to_dict(), history)


class Studio:
    """The controller with recording sinks, on a demo project (a Document stand-in: the
    controller reads only .project and .skeleton)."""

    def __init__(self, qtbot, folder: Path, train: FakeTrain):
        self.project = Project.open(folder)
        self.doc = SimpleNamespace(project=self.project, skeleton=self.project.skeleton)
        labeled = [r.id for r in self.project.images() if r.status == "done"]
        self.image_id = labeled[0]
        self.previews: list[tuple] = []
        self.messages: list[str] = []
        self.panel = TrainPanel()
        qtbot.addWidget(self.panel)
        self.train = train
        self.controller = TrainingController(
            self.panel, document=lambda: self.doc, current_image=lambda: self.image_id,
            show_status=lambda text, ms: self.messages.append(text),
            show_preview=lambda image_id, pred: self.previews.append((image_id, pred)),
            train=train,
        )  # fmt: skip

    def close(self) -> None:
        """What closing the window does: join the worker, then close the project."""
        self.controller.stop_and_wait()
        self.doc = None
        self.project.close()


@pytest.fixture
def studio(qtbot, demo, monkeypatch):
    writers = []  # the threads that wrote a run's end
    real_finish = runs.finish_run

    def finish_run(*args):
        writers.append(threading.current_thread())
        return real_finish(*args)

    monkeypatch.setattr(runs, "finish_run", finish_run)
    made = []

    def make(train: FakeTrain) -> Studio:
        made.append(Studio(qtbot, demo, train))
        made[-1].writers = writers
        return made[-1]

    yield make
    for s in made:
        if s.doc is not None:
            s.close()


def _click(button) -> None:
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def test_progress_preview_and_stop_are_recorded_from_the_worker(qtbot, studio):
    s = studio(FakeTrain(epochs=1))
    _click(s.panel.train_button)
    assert s.controller.running and not s.panel.train_button.isEnabled()
    run = get_run(s.project, s.controller.run_id)
    assert run.status == "running" and run.pid is not None
    qtbot.waitUntil(lambda: s.panel.curve_points() == 1, timeout=10_000)
    # The preview of the current image is drawn, one marker per keypoint.
    qtbot.waitUntil(lambda: len(s.previews) > 0, timeout=5_000)
    image_id, prediction = s.previews[-1]
    assert image_id == s.image_id
    assert prediction.xy.shape == (len(s.project.skeleton), 2)
    assert prediction.confidence.tolist() == [0.9] * len(s.project.skeleton)
    assert s.panel.progress.maximum() == 1000 and s.panel.progress.value() > 0
    assert s.train.calls[0]["thread"] is not threading.main_thread()

    _click(s.panel.stop_button)
    qtbot.waitUntil(lambda: not s.controller.running, timeout=10_000)
    qtbot.waitUntil(s.panel.train_button.isEnabled, timeout=5_000)
    run = get_run(s.project, run.id)
    assert run.status == "stopped" and run.model_file(s.project).is_file()
    assert run.history == [{"epoch": 1, "loss": 0.5, "val_px": 3.0, "lr": 1e-3, "seconds": 1,
                            "images_per_s": 100.0}]  # fmt: skip
    assert len(s.writers) == 1 and s.writers[0] is not threading.main_thread()
    assert s.panel.runs.count() == 1 and "stopped" in s.panel.runs.item(0).text()
    assert s.panel.status.text() == f"run {run.id} stopped: val 2.50 px"


def test_stop_in_the_first_epoch_leaves_no_busy_bar(qtbot, studio):
    s = studio(FakeTrain(epochs=0))  # batches run, no epoch ends before Stop
    _click(s.panel.train_button)
    qtbot.waitUntil(lambda: s.panel.status.text().startswith("first epoch: batch"),
                    timeout=10_000)  # fmt: skip
    assert s.panel.progress.maximum() == 0  # busy: no epoch has told the pace yet
    _click(s.panel.stop_button)
    qtbot.waitUntil(s.panel.train_button.isEnabled, timeout=10_000)
    assert s.panel.progress.maximum() > 0 and s.panel.progress.value() == 0
    assert list_runs(s.project)[-1].status == "stopped"


def test_closing_mid_training_still_records_the_end(qtbot, studio, demo):
    s = studio(FakeTrain(epochs=1))
    _click(s.panel.train_button)
    qtbot.waitUntil(lambda: s.panel.curve_points() == 1, timeout=10_000)
    run_id = s.controller.run_id
    s.close()  # the document is gone before the worker's "finished" reaches the controller
    qtbot.wait(50)  # deliver the queued signals: they find no document and change nothing
    assert s.panel.runs.count() == 0 and s.panel.train_button.isEnabled()
    with Project.open(demo, readonly=True) as again:
        run = get_run(again, run_id)
        assert run.status == "stopped" and run.model_file(again).is_file()


def test_a_failing_training_is_recorded_and_shown(qtbot, studio):
    s = studio(FakeTrain(fail=FloatingPointError("the training loss became nan at epoch 3")))
    _click(s.panel.train_button)
    qtbot.waitUntil(s.panel.train_button.isEnabled, timeout=10_000)
    run = list_runs(s.project)[-1]
    assert run.status == "failed"
    assert run.metrics["error"] == "FloatingPointError: the training loss became nan at epoch 3"
    boxes = [w for w in s.panel.findChildren(QMessageBox) if w.isVisible()]
    assert boxes and boxes[0].text() == run.metrics["error"]
    assert "failed" in s.panel.runs.item(0).text()


def test_a_preview_of_another_image_is_not_drawn(qtbot, studio):
    s = studio(FakeTrain())
    other = str(s.project.image_path(s.image_id + 1))
    k = len(s.project.skeleton)
    preview = Preview(other, ((1.0, 2.0),) * k, (0.5,) * k)
    s.controller._on_worker_progressed(EpochEnded(1, 9, 1.0, 2.0, 2.0, 1e-3, 1.0, 8.0, 50.0,
                                                  preview))  # fmt: skip
    assert s.previews == [] and s.panel.curve_points() == 1
    s.image_id += 1
    s.controller._on_worker_progressed(EpochEnded(2, 9, 1.0, 2.0, 2.0, 1e-3, 2.0, 7.0, 50.0,
                                                  preview))  # fmt: skip
    assert len(s.previews) == 1


def test_a_run_whose_process_died_is_listed_as_interrupted(qtbot, studio):
    s = studio(FakeTrain())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    start_run(s.project, "default", {}, run_id="20260101-000000-default")
    with s.project.transaction() as conn:
        conn.execute("UPDATE runs SET pid = ?", (int(dead.stdout),))
    s.controller.refresh_runs()
    assert s.panel.runs.item(0).text().startswith(f"20260101-000000-default  {INTERRUPTED}")


def test_the_dock_follows_the_plan_unless_the_user_sets_a_value(qtbot, studio):
    s = studio(FakeTrain(epochs=1))
    assert s.panel.settings()["input_size"] is None  # "from the plan" by default
    _click(s.panel.plan_button)
    text = s.panel.plan_text.text()
    assert "frames" in text and "stride" in text and text.count("•") >= 4

    _click(s.panel.train_button)
    qtbot.waitUntil(lambda: s.panel.curve_points() == 1, timeout=10_000)
    config = s.controller.config
    plan = config.plan
    assert config.input_size == plan["input_size"] and config.crop_size == plan["crop_size"]
    assert config.overrides == {}  # nothing the user set
    assert s.panel.plan_text.text() == "\n".join(f"• {x}" for x in plan["sentences"])
    recorded = get_run(s.project, s.controller.run_id).config
    assert recorded["plan"]["input_size"] == plan["input_size"]
    _click(s.panel.stop_button)
    qtbot.waitUntil(lambda: not s.controller.running, timeout=10_000)

    s.panel.input_size.setValue(96)  # the user's own number wins and is recorded as such
    _click(s.panel.train_button)
    qtbot.waitUntil(lambda: s.controller.running, timeout=10_000)
    assert s.controller.config.input_size == 96
    assert s.controller.config.overrides["input_size"] == 96
    _click(s.panel.stop_button)
    qtbot.waitUntil(lambda: not s.controller.running, timeout=10_000)


class AssistTrain(FakeTrain):
    """train() under Assist: after the first epoch the user labels one more image; refresh()
    must then hand over a new snapshot, and publish() makes the run's better model active."""

    def __init__(self, model_file: Path):
        super().__init__(epochs=1)
        self.model_file = model_file
        self.seen: dict = {}

    def __call__(self, data, config, on_progress, should_stop, run_dir, refresh, publish):
        self.seen["config"] = config
        self.seen["before"] = refresh()  # nothing changed yet
        self.seen["label"].set()  # the test labels an image now (UI thread)
        deadline = time.monotonic() + 10
        fresh = None
        while fresh is None and time.monotonic() < deadline:
            time.sleep(0.05)
            fresh = refresh()
        self.seen["sizes"] = (len(data), None if fresh is None else len(fresh))
        run_dir.mkdir(parents=True, exist_ok=True)
        published = run_dir / "model.kpmodel"
        published.write_bytes(self.model_file.read_bytes())
        publish(published, {"mean_px": 2.0, "interim": True})
        return super().__call__(data, config, on_progress, should_stop, run_dir)


def test_assist_follows_new_labels_and_makes_each_better_model_active(qtbot, studio, tmp_path):
    pytest.importorskip("tensorflow")
    from conftest import TINY_PARAMS

    from kpstudio.ml.model_file import save_model_file

    s = studio(FakeTrain())
    model_file = save_model_file(tmp_path / "m.kpmodel", _tiny_for(s.project.skeleton),
                                 arch="default", params=TINY_PARAMS, input_size=64,
                                 skeleton=s.project.skeleton)  # fmt: skip
    train = AssistTrain(model_file)
    train.seen["label"] = threading.Event()
    s.controller.train_function = train
    published = []
    s.controller.model_published.connect(lambda run_id, p: published.append((run_id, p)))
    _click(s.panel.assist_button)
    assert s.controller.running and not s.panel.assist_button.isEnabled()
    qtbot.waitUntil(train.seen["label"].is_set, timeout=20_000)
    unlabeled = next(r.id for r in s.project.images() if r.status == "unlabeled")
    s.project.set_label(unlabeled, s.project.skeleton.keypoints[0], 10.0, 12.0)
    qtbot.waitUntil(lambda: bool(published), timeout=20_000)
    assert train.seen["before"] is None
    before, after = train.seen["sizes"]
    assert after == before + 1  # the new label joined
    assert train.seen["config"].params.get("hints") is True
    run_id, predictor = published[0]
    assert run_id == s.controller.run_id and predictor.skeleton == s.project.skeleton
    run = get_run(s.project)  # the active model is the running Assist run
    assert run.id == run_id and run.status == "running" and run.model_path
    _click(s.panel.stop_button)
    qtbot.waitUntil(lambda: not s.controller.running, timeout=10_000)


def _tiny_for(skeleton):
    from conftest import TINY_PARAMS

    from kpstudio.ml.models import build_model

    return build_model("default", len(skeleton), 64, **TINY_PARAMS)
