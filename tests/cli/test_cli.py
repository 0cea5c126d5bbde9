"""The `kpstudio` command end to end, on the real DeepLabCut openfield set."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from kpstudio.cli import main
from kpstudio.core.project import DB_NAME, Project


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kpstudio.cli", *map(str, args)], capture_output=True, text=True
    )


def test_help_and_usage_errors():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("new", "import", "export", "info", "demo"):
        assert command in result.stdout
    assert run_cli("import").returncode == 2  # missing arguments: a usage error
    assert run_cli("export", "x", "--format", "bogus", "-o", "y").returncode == 2


@pytest.fixture(scope="module")
def imported(openfield, tmp_path_factory):
    project = tmp_path_factory.mktemp("cli") / "mouse"
    result = run_cli("import", project, openfield / "annotations.json", "--format", "coco")
    assert result.returncode == 0, result.stderr
    return project


def test_import_coco_then_info_reports_the_set(imported):
    result = run_cli("info", imported, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["images"] == 116
    assert info["labeled_images"] == 116
    assert info["keypoints"] == ["snout", "leftear", "rightear", "tailbase"]
    assert info["flip_pairs"] == [["leftear", "rightear"]]  # inferred from the names
    assert info["split"]["train"] + info["split"]["val"] == 116
    assert 10 <= info["split"]["val"] <= 40


def test_export_coco_loads_in_pycocotools_and_round_trips(imported, openfield, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    out = tmp_path / "out.json"
    result = run_cli("export", imported, "--format", "coco", "-o", out)
    assert result.returncode == 0, result.stderr
    gt = COCO(str(out))
    assert len(gt.getImgIds()) == 116
    dets = [dict(a, score=1.0) for a in gt.loadAnns(gt.getAnnIds())]
    evaluator = COCOeval(gt, gt.loadRes(dets), "keypoints")
    evaluator.params.kpt_oks_sigmas = np.full(4, 0.05)  # COCO's 17 person sigmas do not apply
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)

    # Every coordinate round-trips within 1e-3 px against the original file.
    source = json.loads((openfield / "annotations.json").read_text())
    exported = json.loads(out.read_text())
    by_name = {im["file_name"]: im["id"] for im in exported["images"]}
    kp_out = {a["image_id"]: np.array(a["keypoints"]) for a in exported["annotations"]}
    names = {im["id"]: im["file_name"] for im in source["images"]}
    for ann in source["annotations"]:
        ours = kp_out[by_name[names[ann["image_id"]]]]
        theirs = np.array(ann["keypoints"], dtype=float)
        assert np.abs(ours[0::3] - theirs[0::3]).max() <= 1e-3
        assert np.abs(ours[1::3] - theirs[1::3]).max() <= 1e-3
        assert (ours[2::3] == theirs[2::3]).all()


def test_coordinates_in_the_store_follow_our_convention(imported, openfield):
    source = json.loads((openfield / "annotations.json").read_text())
    first = source["annotations"][0]["keypoints"]
    with Project.open(imported, readonly=True) as project:
        image = next(r for r in project.images() if r.path.endswith("img0000.png"))
        snout = project.labels(image.id)[0]
    # COCO counts pixel centres at integers; we put them at i + 0.5.
    assert (snout.x, snout.y) == pytest.approx((first[0] + 0.5, first[1] + 0.5))


@pytest.mark.parametrize("fmt, name", [("labelme", "lm"), ("dlc", "d.csv"), ("yolo", "y"),
                                       ("csv", "c.csv")])  # fmt: skip
def test_every_export_format_writes(imported, tmp_path, fmt, name):
    result = run_cli("export", imported, "--format", fmt, "-o", tmp_path / name)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / name).exists()


def test_refused_import_creates_and_changes_nothing(tmp_path, openfield, imported):
    bad = tmp_path / "bad.json"
    data = json.loads((openfield / "annotations.json").read_text())
    data["annotations"][5]["keypoints"][0] = "NaN"
    bad.write_text(json.dumps(data).replace('"NaN"', "NaN"))
    target = tmp_path / "never"
    result = run_cli("import", target, bad, "--format", "coco", "--images", openfield / "images")
    assert result.returncode == 1
    assert "bad.json" in result.stderr and "error" in result.stderr
    assert not (target / DB_NAME).exists()

    # Into an existing project: refused, and the project is byte-for-byte the same state.
    before = run_cli("info", imported, "--json").stdout
    result = run_cli("import", imported, bad, "--format", "coco", "--images", openfield / "images")
    assert result.returncode == 1
    assert run_cli("info", imported, "--json").stdout == before


def test_import_paths_escaping_the_root_are_refused(tmp_path, openfield):
    data = json.loads((openfield / "annotations.json").read_text())
    data["images"][3]["file_name"] = "../../../etc/passwd"
    bad = tmp_path / "escape.json"
    bad.write_text(json.dumps(data))
    result = run_cli("import", tmp_path / "p", bad, "--format", "coco",
                     "--images", openfield / "images")  # fmt: skip
    assert result.returncode == 1
    assert "escape" in result.stderr and "../../../etc/passwd" in result.stderr


def test_new_from_folder_reports_bad_images(tmp_path, capsys):
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    ok, png = cv2.imencode(".png", np.zeros((20, 30, 3), np.uint8))
    (folder / "good.png").write_bytes(png.tobytes())
    (folder / "Bild_ü.png").write_bytes(png.tobytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    code = main(["new", str(tmp_path / "p"), "--images", str(folder),
                 "--keypoints", "a,b", "--edges", "a-b"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0
    assert "2 images" in captured.out
    assert "broken.jpg" in captured.err
    with Project.open(tmp_path / "p", readonly=True) as project:
        assert sorted(r.path for r in project.images()) == ["../frames/Bild_ü.png",
                                                            "../frames/good.png"]  # fmt: skip
        assert project.images()[0].width == 30


def test_duplicate_keypoint_names_are_a_clear_error(tmp_path, capsys):
    (tmp_path / "frames").mkdir()
    code = main(["new", str(tmp_path / "p"), "--images", str(tmp_path / "frames"),
                 "--keypoints", "nose,tail,nose"])  # fmt: skip
    assert code == 1
    assert "'nose' appears twice" in capsys.readouterr().err
    assert not (tmp_path / "p" / DB_NAME).exists()


def test_demo_builds_a_labeled_project(tmp_path):
    result = run_cli("demo", tmp_path / "demo", "--no-gui")
    assert result.returncode == 0, result.stderr
    info = json.loads(run_cli("info", tmp_path / "demo", "--json").stdout)
    assert info["images"] == 36 and 0 < info["labeled_images"] < 36
    assert ["left_hand", "right_hand"] in info["flip_pairs"]


def test_info_lists_runs_and_a_dead_process_run_as_interrupted(demo):
    from kpstudio.core.runs import record_run, start_run

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )  # an ended process
    with Project.open(demo) as project:
        record_run(project, "20260101-000000-seed", "seed", "finished", {},
                   metrics={"mean_px": 4.25})  # fmt: skip
        start_run(project, "default", {}, run_id="20260102-000000-default")
        with project.transaction() as conn:
            conn.execute("UPDATE runs SET pid = ? WHERE id = '20260102-000000-default'",
                         (int(gone.stdout),))  # fmt: skip
    info = json.loads(run_cli("info", demo, "--json").stdout)
    assert [(r["id"], r["status"]) for r in info["runs"]] == [
        ("20260101-000000-seed", "finished"),
        ("20260102-000000-default", "interrupted"),
    ]
    text = run_cli("info", demo).stdout
    assert "run       20260101-000000-seed  finished  val 4.25 px" in text
    assert "run       20260102-000000-default  interrupted" in text


# --- careless and hostile input (issue 11): exit 1, one message naming the file, no leftovers --


def write_png(path, width=30, height=20):
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    ok, png = cv2.imencode(".png", np.zeros((height, width, 3), np.uint8))
    path.write_bytes(png.tobytes())


def test_a_failed_new_leaves_nothing_behind_and_the_retry_works(tmp_path, capsys, monkeypatch):
    write_png(tmp_path / "frames" / "a.png")
    args = ["new", str(tmp_path / "p"), "--images", str(tmp_path / "frames"), "--keypoints", "a"]

    def broken(self, folder, progress=None):
        raise OSError(f"{folder}: the disk went away")

    with monkeypatch.context() as m:
        m.setattr(Project, "add_image_folder", broken)
        assert main(args) == 1
    assert "the disk went away" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
    assert main(args) == 0  # nothing blocks the retry
    existing = tmp_path / "kept"
    (existing / "notes.txt").parent.mkdir()
    (existing / "notes.txt").write_text("mine")
    with monkeypatch.context() as m:
        m.setattr(Project, "add_image_folder", broken)
        assert main([*args[:1], str(existing), *args[2:]]) == 1
    assert sorted(p.name for p in existing.iterdir()) == ["notes.txt"]


def test_new_reports_pipes_and_gifs_by_name(tmp_path, capsys):
    import os

    from conftest import time_limit
    from PIL import Image

    write_png(tmp_path / "frames" / "a.png")
    os.mkfifo(tmp_path / "frames" / "pipe.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "frames" / "anim.gif")
    with time_limit(60):
        code = main(["new", str(tmp_path / "p"), "--images", str(tmp_path / "frames"),
                     "--keypoints", "a"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0
    assert "pipe.png" in err and "named pipe" in err and "anim.gif" in err and "GIF" in err


@pytest.mark.parametrize("content", [b"", b"not ours\n"], ids=["zero-byte", "foreign"])
def test_import_never_turns_a_foreign_project_file_into_a_project(tmp_path, capsys, content):
    write_png(tmp_path / "a.png")
    coco = {"images": [{"id": 1, "file_name": "a.png"}], "annotations": [],
            "categories": [{"id": 1, "name": "x", "keypoints": ["a"]}]}  # fmt: skip
    (tmp_path / "c.json").write_text(json.dumps(coco))
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / DB_NAME).write_bytes(content)
    code = main(["import", str(folder), str(tmp_path / "c.json"), "--format", "coco"])
    err = capsys.readouterr().err
    assert code == 1
    assert "not a kpstudio project" in err and str(folder / DB_NAME) in err
    assert "older schema" not in err and "Traceback" not in err
    assert (folder / DB_NAME).read_bytes() == content
    assert sorted(p.name for p in folder.iterdir()) == [DB_NAME]


def test_info_prints_names_escaped(tmp_path, capsys):
    import sqlite3

    from kpstudio.core.skeleton import Skeleton

    Project.create(tmp_path / "p", Skeleton.create(["nose", "tail"])).close()
    # A name stored before names were checked, or written by another tool into the store.
    with sqlite3.connect(tmp_path / "p" / DB_NAME) as conn:
        conn.execute("UPDATE keypoints SET name = 'tail\x1b]0;owned\x07\x1b[2J' WHERE name='tail'")
    assert main(["info", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "tail\\x1b]0;owned\\x07\\x1b[2J" in out


def test_export_csv_escapes_formula_names(tmp_path, capsys):
    import csv

    from kpstudio.core.skeleton import Skeleton

    write_png(tmp_path / "a.png")
    with Project.create(tmp_path / "p", Skeleton.create(["=1+2", "@cmd"])) as project:
        (image_id,) = project.add_images([(tmp_path / "a.png", 30, 20, "h")])
        project.set_label(image_id, "=1+2", 3.5, 4.5)
        project.set_label(image_id, "@cmd", 5.5, 6.5)
    assert main(["export", str(tmp_path / "p"), "--format", "csv", "-o",
                 str(tmp_path / "x.csv")]) == 0  # fmt: skip
    rows = list(csv.reader((tmp_path / "x.csv").open()))
    assert {r[2] for r in rows[1:]} == {"'=1+2", "'@cmd"}
    assert rows[1][3] == "3.5000"
