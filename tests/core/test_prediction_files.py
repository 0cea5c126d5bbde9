"""A run's stored predictions written as CSV / JSON files (the Export dialog's Predictions tab),
through the same writer as `kpstudio predict`."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from kpstudio.core.prediction_files import Prediction, write_predictions
from kpstudio.core.predictions import (
    export_stored_predictions,
    predicted_image_count,
    store_predictions,
    stored_predictions,
)
from kpstudio.core.project import Project, ProjectError
from kpstudio.core.runs import record_run
from kpstudio.core.skeleton import Skeleton

NAMES = ["nose", "left_ear", "right_ear"]


@pytest.fixture
def project(tmp_path):
    """Three images; run r1 predicted two of them (one with a keypoint missing), run r2 one."""
    project = Project.create(tmp_path / "proj", Skeleton.create(NAMES))
    folder = tmp_path / "proj" / "images"
    ids = project.add_images([(folder / f"{n}.png", 64, 48, f"sha{n}") for n in "abc"])
    record_run(project, "r1", "default", "finished", {})
    record_run(project, "r2", "default", "finished", {})
    store_predictions(project, "r1", {
        ids[0]: ([[1.5, 2.25], [3.0, 4.0], [5.125, 6.0]], [0.9, 0.5, 0.25]),
        ids[2]: ([[10.0, 11.0], [np.nan, np.nan], [12.0, 13.0]], [0.75, np.nan, 0.125]),
    })  # fmt: skip
    store_predictions(project, "r2", {ids[1]: (np.zeros((3, 2)), np.ones(3))})
    yield project
    project.close()


def test_stored_predictions_of_one_run_in_image_order(project):
    preds = stored_predictions(project, "r1")
    assert [p.path for p in preds] == ["images/a.png", "images/c.png"]  # relative, as stored
    np.testing.assert_array_equal(preds[0].xy, [[1.5, 2.25], [3.0, 4.0], [5.125, 6.0]])
    assert np.isnan(preds[1].xy[1]).all() and np.isnan(preds[1].confidence[1])
    assert [p.path for p in stored_predictions(project, "r2")] == ["images/b.png"]
    assert (predicted_image_count(project, "r1"), predicted_image_count(project, "r2")) == (2, 1)


def test_many_answers_are_stored_in_chunks_and_a_bad_one_stores_nothing(project, monkeypatch):
    import kpstudio.core.project as store_module

    monkeypatch.setattr(store_module, "WORKER_TURN_S", 0.0)  # one image per transaction
    folder = project.folder / "images"
    ids = project.add_images([(folder / f"d{i}.png", 64, 48, f"shad{i}") for i in range(5)])
    answers = {i: (np.full((3, 2), float(i)), np.full(3, 0.5)) for i in ids}
    bad = {**answers, ids[-1]: (np.zeros((2, 2)), np.ones(2))}  # two keypoints, not three
    with pytest.raises(ValueError, match=f"image {ids[-1]} must have 3 keypoints"):
        store_predictions(project, "r2", bad)
    assert [p.path for p in stored_predictions(project, "r2")] == ["images/b.png"]
    store_predictions(project, "r2", answers)
    preds = stored_predictions(project, "r2")
    assert len(preds) == 6 and preds[-1].xy[0, 0] == float(ids[-1])
    assert {project.image(i).status for i in ids} == {"predicted"}


def test_csv_export_round_trips_the_stored_values(project, tmp_path):
    out = tmp_path / "out" / "preds.csv"
    assert export_stored_predictions(project, "r1", out) == 2
    with open(out, newline="", encoding="utf-8") as fp:
        rows = list(csv.DictReader(fp))
    assert list(rows[0]) == ["image", "keypoint", "x", "y", "confidence"]
    got = [(r["image"], r["keypoint"], float(r["x"]), float(r["y"]), float(r["confidence"]))
           for r in rows]  # fmt: skip
    assert got == [
        ("images/a.png", "nose", 1.5, 2.25, 0.9),
        ("images/a.png", "left_ear", 3.0, 4.0, 0.5),
        ("images/a.png", "right_ear", 5.125, 6.0, 0.25),
        ("images/c.png", "nose", 10.0, 11.0, 0.75),  # c's left_ear was never predicted
        ("images/c.png", "right_ear", 12.0, 13.0, 0.125),
    ]
    assert sorted(p.name for p in out.parent.iterdir()) == ["preds.csv"]  # no temp file left


def test_json_export_is_valid_json_without_nan(project, tmp_path):
    out = tmp_path / "preds.JSON"  # the suffix is matched case-insensitively
    export_stored_predictions(project, "r1", out)
    data = json.loads(out.read_text(encoding="utf-8"))  # strict JSON: NaN would not load back
    assert [d["image"] for d in data] == ["images/a.png", "images/c.png"]
    assert data[0]["keypoints"]["right_ear"] == {"x": 5.125, "y": 6.0, "confidence": 0.25}
    assert list(data[1]["keypoints"]) == ["nose", "right_ear"]


def test_a_bad_suffix_names_the_file_and_writes_nothing(project, tmp_path):
    for name in ("preds.txt", "preds"):
        with pytest.raises(ValueError, match=rf"{name}: predictions are written as \.json or "):
            export_stored_predictions(project, "r1", tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]


def test_a_run_without_stored_predictions_is_a_clear_error(project, tmp_path):
    record_run(project, "r3", "seed", "finished", {})
    with pytest.raises(ProjectError, match="run r3 has no stored predictions"):
        export_stored_predictions(project, "r3", tmp_path / "preds.csv")
    assert not (tmp_path / "preds.csv").exists()


def test_a_prediction_of_another_skeleton_is_refused(tmp_path):
    pred = Prediction("x.png", np.zeros((2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="x.png has 2 keypoints, the skeleton 3"):
        write_predictions([pred], NAMES, tmp_path / "out.json")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    (tmp_path / "x.csv").mkdir()  # `predict -o x.csv` where x.csv is a folder
    pred = Prediction("a.png", np.ones((3, 2)), np.ones(3))
    with pytest.raises(OSError):
        write_predictions([pred], NAMES, tmp_path / "x.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]
    assert list((tmp_path / "x.csv").iterdir()) == []


def test_csv_cells_a_spreadsheet_would_run_are_escaped(tmp_path):
    names = ['=HYPERLINK("http://x","y")', "-cmd", "@SUM(1)"]
    pred = Prediction("+evil.png", np.array([[-3.5, 1.0]] * 3), np.full(3, 0.5))
    write_predictions([pred], names, tmp_path / "p.csv")
    rows = list(csv.reader((tmp_path / "p.csv").open()))[1:]
    assert [r[1] for r in rows] == ["'" + n for n in names]
    assert {r[0] for r in rows} == {"'+evil.png"}
    assert rows[0][2] == "-3.5"  # a genuine negative number stays a number
