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
from kpstudio.core.runs import run_folder  # noqa: E402
from kpstudio.core.training_set import snapshot  # noqa: E402
from kpstudio.ml.config import TrainConfig  # noqa: E402
from kpstudio.ml.events import (  # noqa: E402
    BatchEnded,
    EpochEnded,
    Loading,
    TrainingEnded,
    TrainingStarted,
)
from kpstudio.ml.model_file import load_model_file  # noqa: E402
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
    assert isinstance(events[0], Loading) and events[0].done == 0
    assert events[-1] == TrainingEnded("finished", "the 3 epochs are done")
    started = [e for e in events if isinstance(e, TrainingStarted)]
    assert started == [TrainingStarted(1, 8, 2, 3)]  # 16 train images in batches of 8
    epochs = [e for e in events if isinstance(e, EpochEnded)]
    assert [e.epoch for e in epochs] == [1, 2, 3]
    for e in epochs:
        assert np.isfinite(e.loss) and np.isfinite(e.val_px) and e.eta_s >= 0
        assert e.preview.image == preview and len(e.preview.xy) == len(data.skeleton)
        assert all(type(v) is float for xy in e.preview.xy for v in xy)  # plain, thread-safe
    assert [e.history_entry() for e in epochs] == result.history
    batches = [e for e in events if isinstance(e, BatchEnded)]
    assert [(e.epoch, e.batch, e.batches) for e in batches[:2]] == [(1, 1, 2), (1, 2, 2)]
    assert result.model_path.is_file() and result.model_path.suffix == ".kpmodel"
    assert result.model_path.parent == run_folder(folder, result.run_id)
    assert set(result.metrics) >= {"mean_px", "median_px", "pck@0.05", "pck@0.1", "per_keypoint"}
    assert result.metrics["replicas"] == result.replicas == 1
    assert len(result.history) == 3


def test_cancel_takes_effect_before_the_next_batch(demo):
    _, data = demo
    seen = []
    stop_after = 3

    def on_progress(event):
        if isinstance(event, BatchEnded):
            seen.append(event)

    result = train(data, TrainConfig(**TINY, epochs=50), on_progress=on_progress,
                   should_stop=lambda: len(seen) >= stop_after)  # fmt: skip
    assert result.status == "stopped"
    assert len(seen) == stop_after  # not one batch ran after the stop was asked for
    assert result.model_path.is_file()  # the best checkpoint so far is kept
    assert "stopped by the user at epoch 2" in result.notes


def test_stop_while_loading_images_ends_stopped_without_a_model(demo):
    _, data = demo
    events = []
    result = train(
        data,
        TrainConfig(**TINY, epochs=5),
        on_progress=events.append,
        should_stop=lambda: any(isinstance(e, Loading) and e.done for e in events),
    )
    assert result.status == "stopped" and result.model_path is None and not result.history
    assert events[-1] == TrainingEnded("stopped", "stopped by the user while loading images")


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


def test_mirrored_strategy_trains_two_replicas_on_two_logical_cpus(demo):
    folder, _ = demo
    code = textwrap.dedent(f"""
        import json
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from kpstudio.core.project import Project
        from kpstudio.core.training_set import snapshot
        from kpstudio.ml.config import TrainConfig
        from kpstudio.ml.events import TrainingStarted
        from kpstudio.ml.train import train
        with Project.open({str(folder)!r}, readonly=True) as p:
            data = snapshot(p)
        for name in ("mirrored", "multiworker"):
            started = []
            r = train(data, TrainConfig(**{TINY!r}, epochs=2, strategy=name),
                      on_progress=lambda e: isinstance(e, TrainingStarted) and started.append(e))
            print(json.dumps({{"strategy": name, "status": r.status, "epochs": len(r.history),
                              "replicas": r.metrics["replicas"], "started": started[0].replicas,
                              "global_batch": started[0].global_batch,
                              "loss": r.history[-1]["loss"]}}))
    """)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # the two replicas are the CPU's halves
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    runs = {r["strategy"]: r for r in map(json.loads, out.stdout.strip().splitlines())}
    mirrored, multiworker = runs["mirrored"], runs["multiworker"]
    # One replica per logical CPU, each taking a batch of 8: 16 images per step.
    assert mirrored["replicas"] == mirrored["started"] == 2 and mirrored["global_batch"] == 16
    assert mirrored["status"] == "finished" and mirrored["epochs"] == 2
    assert np.isfinite(mirrored["loss"])
    # Without TF_CONFIG, multiworker is one worker (tests/ml/test_multiworker.py runs two).
    assert multiworker["replicas"] == 1 and multiworker["epochs"] == 2


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


def test_a_model_its_file_would_refuse_is_refused_before_training(demo, tmp_path):
    # An input side over the model file's limit used to train for the whole budget and then
    # fail to save; now nothing is loaded or built.
    folder, data = demo
    events = []
    config = TrainConfig(**{**TINY, "input_size": 2048}, epochs=1)
    with pytest.raises(ValueError, match="cannot train this model: .*input size"):
        train(data, config, on_progress=events.append, run_dir=tmp_path / "r")
    assert events == [] and not (tmp_path / "r").exists()


def test_a_run_started_from_a_model_begins_where_it_left_off(demo):
    _, data = demo
    first = train(data, TrainConfig(**TINY, epochs=6))
    cold = train(data, TrainConfig(**TINY, epochs=1, learning_rate=1e-9))
    warm = train(data, TrainConfig(**TINY, epochs=1, learning_rate=1e-9,
                                   warm_start=str(first.model_path)))  # fmt: skip
    # With a learning rate of ~0 the one epoch changes nothing: the val error is the model's.
    # (Compared with the first model read as runs are validated: over the whole heatmap.)
    whole_map = first.metrics["px_by_reading"]["0"]
    assert warm.history[0]["val_px"] == pytest.approx(whole_map, rel=0.02)
    assert cold.history[0]["val_px"] > warm.history[0]["val_px"]
    assert any("started from the weights" in n for n in warm.notes)


def test_a_run_from_a_model_keeps_that_model_when_training_only_makes_it_worse(demo, monkeypatch):
    _, data = demo
    first = train(data, TrainConfig(**TINY, epochs=2))
    errors = iter([2.0, 3.0, 2.5])  # the starting weights' val error, then each epoch's
    monkeypatch.setattr("kpstudio.ml.train.mean_px_error", lambda *args: next(errors))
    events = []
    warm = train(data, TrainConfig(**TINY, epochs=2, learning_rate=0.05,
                                   warm_start=str(first.model_path)), events.append)  # fmt: skip
    epochs = [e for e in events if isinstance(e, EpochEnded)]
    assert [(e.val_px, e.best_val_px) for e in epochs] == [(3.0, 2.0), (2.5, 2.0)]
    assert warm.best_epoch == 0
    _, started = load_model_file(first.model_path)
    _, kept = load_model_file(warm.model_path)
    for a, b in zip(started.get_weights(), kept.get_weights()):
        np.testing.assert_array_equal(a, b)



def test_a_run_keeps_the_heatmap_reading_with_the_lower_val_error(demo, monkeypatch):
    """Both readings are measured on val when training ends; the better one goes into the
    model file (and a model started from it may read either way)."""
    import kpstudio.ml.peak_reading as train_module  # where a run's end measures both readings
    from kpstudio.ml.models import PEAK_RADIUS
    from kpstudio.ml.peak_reading import soft_argmax_layers
    from kpstudio.ml.planning import parse_setting

    _, data = demo
    real = train_module.mean_px_error
    measured = []

    def around_peak_wins(pred, data_, idx):
        px = real(pred, data_, idx)
        layers = soft_argmax_layers(*models_seen)
        measured.append((layers[0].peak if layers else None, px))
        return px if not layers or layers[0].peak == 0 else px * 0.5  # pretend it halves

    models_seen = []
    real_make_infer = train_module.make_infer

    def spy_make_infer(model, *a, **kw):
        models_seen[:] = [model]
        return real_make_infer(model, *a, **kw)

    monkeypatch.setattr(train_module, "mean_px_error", around_peak_wins)
    monkeypatch.setattr(train_module, "make_infer", spy_make_infer)
    # The two readings alone (the relations' prior has its own test below).
    result = train(data, parse_setting(TrainConfig(**TINY, epochs=2), "prior=0"))
    assert [peak for peak, _ in measured[-2:]] == [0, PEAK_RADIUS]  # both, at the end
    assert result.config["params"]["peak"] == PEAK_RADIUS
    readings = result.metrics["px_by_reading"]
    assert readings[str(PEAK_RADIUS)] < readings["0"]
    assert any("within 3 cells of each heatmap's peak" in n for n in result.notes)
    manifest, model = load_model_file(result.model_path)
    assert manifest["architecture"]["params"]["peak"] == PEAK_RADIUS
    assert [layer.peak for layer in soft_argmax_layers(model)] == [PEAK_RADIUS]
    # A run from that model: its weights fit (the reading holds none), chosen anew.
    monkeypatch.setattr(train_module, "mean_px_error", real)
    again = train(data, TrainConfig(**TINY, epochs=1, warm_start=str(result.model_path)))
    assert again.status == "finished" and "px_by_reading" in again.metrics
    # Asked for, the reading is not chosen (nor, with --set prior=0, the relations' prior).
    fixed = parse_setting(parse_setting(TrainConfig(**TINY, epochs=1), "peak=0"), "prior=0")
    kept = train(data, fixed)
    assert kept.config["params"]["peak"] == 0 and "px_by_reading" not in kept.metrics
    fixed_peak = train(data, parse_setting(TrainConfig(**TINY, epochs=1), "peak=3"))
    assert fixed_peak.config["params"]["peak"] == PEAK_RADIUS
    assert {k.split("/")[0] for k in fixed_peak.metrics["px_by_reading"]} == {"3"}

def test_a_model_of_other_keypoints_cannot_start_a_run(demo, tmp_path):
    _, data = demo
    first = train(data, TrainConfig(**TINY, epochs=1))
    other = {**TINY, "params": {"width": 16, "decoder": 16}}
    with pytest.raises(ValueError, match="parameters"):
        train(data, TrainConfig(**other, epochs=1, warm_start=str(first.model_path)))


def test_labels_added_while_training_join_the_next_epoch(demo):
    _, data = demo
    small = data.subset(range(6))
    calls = []

    def refresh():
        calls.append(1)
        return data if len(calls) == 2 else None  # the user labeled 10 more images

    events = []
    result = train(small, TrainConfig(**TINY, epochs=4), on_progress=events.append,
                   refresh=refresh)  # fmt: skip
    started = [e for e in events if isinstance(e, BatchEnded)]
    before, after = (-(-len(d.indices("train")) // 8) for d in (small, data))
    assert before < after  # batches of 8: more steps once the new images joined
    assert [e.batches for e in started if e.batch == 1] == [before, before, after, after]
    assert any("labels changed at epoch 2" in n for n in result.notes)
    assert result.metrics["images"] == len(data.indices("val"))


def test_a_run_keeps_the_keypoint_relations_prior_where_val_says_it_helps(demo, monkeypatch):
    """With relations fitted on the training labels, each reading is also measured with their
    prior at 2× and 3× their spread; the better one goes into the model file, whose layer reads
    with it, and a run from that model may choose anew. `--set prior=0` measures none."""
    import kpstudio.ml.peak_reading as reading_module
    from kpstudio.ml.peak_reading import soft_argmax_layers
    from kpstudio.ml.planning import parse_setting

    _, data = demo
    relation = [1, 0, 0, 0, 1.0, 2.0, 3.0]
    fitted_on = []

    def fit(xy, visible, min_sd):
        fitted_on.append(len(xy))
        return [relation]

    real = reading_module.mean_px_error
    models_seen, seen = [], []
    real_make_infer = reading_module.make_infer

    def spy_make_infer(model, *a, **kw):
        models_seen[:] = [model]
        return real_make_infer(model, *a, **kw)

    def prior_at_four_wins(pred, data_, idx):
        layer = soft_argmax_layers(*models_seen)[0]
        seen.append((layer.peak, [row[6] for row in layer.relations]))
        return real(pred, data_, idx) * (0.5 if [r[6] for r in layer.relations] == [9.0] else 1)

    monkeypatch.setattr(reading_module, "fit_relations", fit)
    monkeypatch.setattr(reading_module, "mean_px_error", prior_at_four_wins)
    monkeypatch.setattr(reading_module, "make_infer", spy_make_infer)
    result = train(data, TrainConfig(**TINY, epochs=2))
    assert fitted_on == [len(data.indices("train"))]  # the training images' labels
    assert seen == [(0, []), (3, []), (0, [6.0]), (3, [6.0]), (0, [9.0]), (3, [9.0])]
    chosen = [[*relation[:6], 9.0]]
    assert result.config["params"]["relations"] == chosen
    assert set(result.metrics["px_by_reading"]) == {"0", "3", "0/prior2", "3/prior2",
                                                    "0/prior3", "3/prior3"}  # fmt: skip
    assert any("guided by 1 relations" in n and "at 3× their spread" in n for n in result.notes)
    manifest, model = load_model_file(result.model_path)
    assert manifest["architecture"]["params"]["relations"] == chosen
    assert [layer.relations for layer in soft_argmax_layers(model)] == [chosen]
    # A run from that model: its weights fit (the relations hold none); it chooses anew.
    monkeypatch.setattr(reading_module, "mean_px_error", real)
    again = train(data, TrainConfig(**TINY, epochs=1, warm_start=str(result.model_path)))
    assert again.status == "finished" and "0/prior3" in again.metrics["px_by_reading"]
    # --set prior=0: no prior measured, and none kept.
    none = parse_setting(TrainConfig(**TINY, epochs=1), "prior=0")
    off = train(data, none)
    assert set(off.metrics["px_by_reading"]) == {"0", "3"}
    assert "relations" not in off.config["params"]
