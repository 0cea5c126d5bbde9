"""train(): progress, cancel within one batch, time budget, resume, runs recorded, strategies.

Tiny models and inputs keep this fast; the full-size runs live in benchmarks/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
pytest.importorskip("tensorflow")

from kpstudio.core.demo import build_demo_project  # noqa: E402
from kpstudio.core.project import Project  # noqa: E402
from kpstudio.core.training_set import snapshot  # noqa: E402
from kpstudio.ml.config import TrainConfig  # noqa: E402
from kpstudio.ml.train import train  # noqa: E402

TINY = {"arch": "default", "input_size": 64, "batch_size": 8,
        "params": {"width": 8, "decoder": 16}}  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train") / "demo"
    build_demo_project(folder, n_images=20)
    with Project.open(folder, readonly=True) as project:
        return folder, snapshot(project)


def test_progress_metrics_and_model_file(demo):
    folder, data = demo
    events = []
    preview = str(data.paths[0])
    result = train(data, TrainConfig(**TINY, epochs=3, preview_image=preview),
                   on_progress=events.append)  # fmt: skip
    assert result.status == "finished"
    epochs = [e for e in events if e.get("phase") == "epoch_end"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    for e in epochs:
        assert np.isfinite(e["loss"]) and np.isfinite(e["val_px"]) and e["eta_s"] >= 0
        assert len(e["preview"]["xy"]) == len(data.skeleton)
    assert any(e.get("phase") == "training" and e["batch"] == 1 for e in events)
    assert result.model_path.is_file() and result.model_path.suffix == ".kpmodel"
    assert set(result.metrics) >= {"mean_px", "median_px", "pck@0.05", "pck@0.1", "per_keypoint"}
    assert len(result.history) == 3


def test_cancel_takes_effect_before_the_next_batch(demo):
    _, data = demo
    seen = []
    stop_after = 3

    def on_progress(event):
        if event.get("phase") == "training":
            seen.append(event)

    result = train(data, TrainConfig(**TINY, epochs=50), on_progress=on_progress,
                   should_stop=lambda: len(seen) >= stop_after)  # fmt: skip
    assert result.status == "stopped"
    assert len(seen) == stop_after  # not one batch ran after the stop was asked for
    assert result.model_path.is_file()  # the best checkpoint so far is kept


def test_time_budget_and_resume(demo):
    _, data = demo
    first = train(data, TrainConfig(**TINY, epochs=100, max_minutes=0.001))
    assert len(first.history) == 1
    assert any("budget" in note for note in first.notes)
    resumed = train(data, TrainConfig(**TINY, epochs=3), resume=first.run_dir)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert any("resumed" in note for note in resumed.notes)


def test_early_stopping_waits_for_the_second_half_of_the_schedule(demo, monkeypatch):
    _, data = demo
    # A val error that never improves after the first epoch: stale from epoch 2 on.
    monkeypatch.setattr("kpstudio.ml.train.mean_px_error", lambda *args: 5.0)
    result = train(data, TrainConfig(**TINY, epochs=12, patience=2))
    assert result.status == "finished" and result.best_epoch == 1
    # Stale for 2 epochs at epoch 3, but the learning rate is still high until half-way.
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4, 5, 6]
    assert any("stopped early: no better val error for 5 epochs" in n for n in result.notes)


def test_cli_train_evaluate_predict_record_the_run(demo, tmp_path):
    folder, data = demo

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "kpstudio.cli", *map(str, args)],
                              capture_output=True, text=True)  # fmt: skip

    result = cli("train", folder, "--input-size", "64", "--epochs", "2", "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [e["epoch"] for e in lines if e["event"] == "epoch"] == [1, 2]
    final = lines[-1]
    assert final["event"] == "finished" and final["status"] == "finished"
    evaluation = cli("evaluate", folder, "--json")
    assert evaluation.returncode == 0, evaluation.stderr
    report = json.loads(evaluation.stdout)
    assert report["run"] == final["run"]
    assert report["mean_px"] == pytest.approx(final["mean_px"], abs=1e-3)
    out = tmp_path / "pred.csv"
    predicted = cli("predict", final["model"], data.paths[0].parent, "-o", out)
    assert predicted.returncode == 0, predicted.stderr
    assert len(out.read_text().splitlines()) == 1 + 20 * len(data.skeleton)
    with Project.open(folder, readonly=True) as project:
        from kpstudio.core.runs import get_run

        run = get_run(project, final["run"])
        assert run.status == "finished" and len(run.history) == 2 and run.metrics["mean_px"]


def test_mirrored_strategy_on_two_logical_cpus(demo):
    folder, _ = demo
    code = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from kpstudio.core.project import Project
        from kpstudio.core.training_set import snapshot
        from kpstudio.ml.config import TrainConfig
        from kpstudio.ml.train import train
        with Project.open({str(folder)!r}, readonly=True) as p:
            data = snapshot(p)
        for name in ("mirrored", "multiworker"):
            r = train(data, TrainConfig(**{TINY!r}, epochs=2, strategy=name))
            print(name, r.status, len(r.history), r.history[-1]["loss"])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("mirrored finished 2") and lines[1].startswith(
        "multiworker finished 2"
    )


def test_crop_training_saves_a_whole_image_model(demo):
    _, data = demo
    config = TrainConfig(arch="default", input_size=128, crop_size=64, batch_size=8, epochs=2,
                         params={"width": 8, "decoder": 16})  # fmt: skip
    result = train(data, config)
    assert result.config["crop_size"] == 64
    assert any("64×64 crops" in note for note in result.notes)
    from kpstudio.ml.predictor import Predictor

    predictor = Predictor.from_file(result.model_path)
    assert predictor.input_size == 128
    assert predictor.model.input_shape[1:3] == (128, 128)
    assert predictor.predict_array(np.zeros((240, 320, 3), np.uint8)).xy.shape == (7, 2)
