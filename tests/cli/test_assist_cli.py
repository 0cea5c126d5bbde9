"""`kpstudio suggest` and `kpstudio learning-curve` (kpstudio/commands/assist.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kpstudio.cli import main
from kpstudio.core.image_features import cache_path
from kpstudio.core.project import Project
from kpstudio.core.runs import record_run


def test_suggest_picks_unlabeled_images_by_diversity_and_caches_features(demo, capsys):
    assert main(["suggest", str(demo), "--count", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["run"] is None and out["rule"].startswith("diversity alone")
    with Project.open(demo, readonly=True) as project:
        unlabeled = {r.id for r in project.images(status="unlabeled")}
    picked = [s["image_id"] for s in out["suggestions"]]
    assert len(picked) == 2 and set(picked) <= unlabeled and len(set(picked)) == 2
    assert cache_path(demo).is_file()
    assert main(["suggest", str(demo), "--count", "10"]) == 0  # more than there are: all 3
    text = capsys.readouterr().out
    assert text.startswith("chosen by diversity alone") and text.count("distance") == 3


def test_suggest_refuses_a_count_below_one(demo, capsys):
    assert main(["suggest", str(demo), "--count", "0"]) == 1
    assert "--count" in capsys.readouterr().err


def _record(demo, points):
    with Project.open(demo) as project:
        for i, (n, err) in enumerate(points):
            record_run(project, f"run-{i}", "default", "finished",
                       {"plan": {"fingerprint": {"images": n}}},
                       metrics={"mean_px": err, "split": "val"})  # fmt: skip


def test_learning_curve_forecasts_from_the_runs_history(demo, capsys):
    assert main(["learning-curve", str(demo)]) == 0
    assert "not enough runs" in capsys.readouterr().out
    n = np.array([2, 3, 4, 6])
    _record(demo, [(int(k), float(20 * k**-0.5 + 1)) for k in n])
    assert main(["learning-curve", str(demo), "--json", "--target", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["labels"] for p in out["points"]] == [2, 3, 4, 6]
    assert out["labels_now"] == 6
    assert out["labels_needed"] == pytest.approx(100, rel=0.25)  # 20/sqrt(n) + 1 = 3 at 100
    assert out["more_labels"] == pytest.approx(94, rel=0.3)
    assert main(["learning-curve", str(demo), "--target", "3"]) == 0
    assert "more labels to reach 3 px" in capsys.readouterr().out


def test_learning_curve_refuses_bad_options(demo, capsys):
    assert main(["learning-curve", str(demo), "--target", "0"]) == 1
    assert "--target" in capsys.readouterr().err
    assert main(["learning-curve", str(demo), "--train-subsets", "--fractions", "2"]) == 1
    assert "--fractions" in capsys.readouterr().err


def _model_run(demo, keypoints):
    from conftest import TINY_PARAMS

    from kpstudio.core.runs import run_folder
    from kpstudio.core.skeleton import Skeleton
    from kpstudio.ml.model_file import save_model_file
    from kpstudio.ml.models import build_model

    model = build_model("default", len(keypoints), 64, **TINY_PARAMS)
    with Project.open(demo) as project:
        path = save_model_file(run_folder(demo, "r1") / "model.kpmodel", model, arch="default",
                               params=TINY_PARAMS, input_size=64,
                               skeleton=Skeleton.create(keypoints))  # fmt: skip
        record_run(project, "r1", "default", "finished", {}, model_path=path)


def test_suggest_with_a_model_weighs_its_uncertainty(demo, capsys):
    pytest.importorskip("tensorflow")
    with Project.open(demo, readonly=True) as project:
        keypoints = list(project.skeleton.keypoints)
    _model_run(demo, keypoints)
    assert main(["suggest", str(demo), "--count", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["run"] == "r1" and out["rule"].startswith("uncertainty of run r1")
    assert all(0 <= s["uncertainty"] <= 1 for s in out["suggestions"])
    assert main(["suggest", str(demo), "--count", "2", "--json", "--no-model"]) == 0
    assert json.loads(capsys.readouterr().out)["run"] is None


def test_suggest_falls_back_to_diversity_for_a_model_of_other_keypoints(demo, capsys):
    pytest.importorskip("tensorflow")
    _model_run(demo, ["x", "y"])
    assert main(["suggest", str(demo), "--count", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["run"] is None and "other keypoints" in out["rule"]


def test_learning_curve_trains_nested_subsets(demo, capsys):
    pytest.importorskip("tensorflow")
    args = ["learning-curve", str(demo), "--train-subsets", "--fractions", "0.5,1",
            "--minutes", "0.01", "--json"]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    labels = [p["labels"] for p in out["points"]]
    assert len(labels) == 2 and labels[0] < labels[1]
    assert all(p["mean_px"] > 0 for p in out["points"])
    assert (demo / "learning_curve.json").is_file() and out["fit"] is not None
    with Project.open(demo, readonly=True) as project:
        assert not project.query("SELECT id FROM runs")  # subset runs are not the user's runs


def test_info_shows_the_labeling_speed(demo, capsys):
    from kpstudio.core.labeling_log import LabelingTally

    clock = [0.0]
    tally = LabelingTally(lambda: clock[0])
    with Project.open(demo) as project:
        done = [r.id for r in project.images(status="done")][:2]
        for image_id, seconds in zip(done, (10.0, 20.0)):
            tally.show(image_id)
            clock[0] += seconds
            tally.click(image_id, 3)
        tally.accept(done[1], 4)
        tally.correct(done[1])
        with project.transaction() as conn:
            tally.write_pending(conn)
    assert main(["info", str(demo), "--json"]) == 0
    speed = json.loads(capsys.readouterr().out)["labeling_speed"]
    assert speed["images_labeled"] == 2 and speed["median_seconds"] == pytest.approx(15.0)
    assert speed["clicks_per_image"] == 3 and speed["corrected_share"] == 0.25
    assert main(["info", str(demo)]) == 0
    assert "speed     2 image(s) labeled; median 15 s and 3.0 clicks" in capsys.readouterr().out
