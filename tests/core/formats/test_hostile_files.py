"""Files crafted or broken on purpose (issue 11): each refused with a LabelError naming the file,
never a traceback, a hang or a machine out of memory; and CSV exports a spreadsheet cannot run."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import time_limit

from kpstudio.core.formats import read_labels, write_labels
from kpstudio.core.formats.spreadsheet import csv_cell, read_csv_cell
from kpstudio.core.labelset import ImageEntry, Instance, LabelError, LabelSet, Visibility
from kpstudio.core.skeleton import Skeleton


def image(path: Path, width: int = 40, height: int = 30) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix, np.zeros((height, width, 3), np.uint8))
    path.write_bytes(data.tobytes())


def coco(tmp_path: Path, **category) -> dict:
    image(tmp_path / "a.png")
    cat = {"id": 1, "name": "mouse", "keypoints": ["nose", "tail"], "skeleton": [[1, 2]]}
    cat.update(category)
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "keypoints": [5, 5, 2, 10, 10, 2]}
        ],
        "categories": [cat],
    }


def refused(fmt: str, file: Path, match: str) -> str:
    with time_limit(20), pytest.raises(LabelError, match=match) as err:
        read_labels(fmt, file)
    assert str(file) in str(err.value)
    return str(err.value)


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


# --- COCO ---------------------------------------------------------------------------------------


def test_coco_category_without_id(tmp_path):
    data = coco(tmp_path)
    del data["categories"][0]["id"]
    refused("coco", write_json(tmp_path / "c.json", data), "needs an 'id'")


@pytest.mark.parametrize("image_id", [[1], True, {"a": 1}, 1.5], ids=["list", "bool", "obj", "f"])
def test_coco_image_id_of_the_wrong_type(tmp_path, image_id):
    data = coco(tmp_path)
    data["annotations"][0]["image_id"] = image_id
    # `true` used to be taken for image 1, a list crashed with TypeError.
    refused("coco", write_json(tmp_path / "c.json", data), "is not in 'images'")


def test_coco_boolean_image_ids_are_not_ids(tmp_path):
    data = coco(tmp_path)
    data["images"][0]["id"] = True
    refused("coco", write_json(tmp_path / "c.json", data), "not a unique number")


def test_coco_skeleton_that_is_not_a_list(tmp_path):
    refused("coco", write_json(tmp_path / "c.json", coco(tmp_path, skeleton=True)), "'skeleton'")


def test_coco_integers_too_large_for_a_float(tmp_path):
    data = coco(tmp_path)
    data["annotations"][0]["keypoints"][0] = 10**400
    refused("coco", write_json(tmp_path / "c.json", data), "too large")
    data = coco(tmp_path)
    data["images"][0]["width"] = 10**400
    refused("coco", write_json(tmp_path / "c.json", data), "not a number")


def test_coco_5000_digit_integer_and_deep_nesting(tmp_path):
    file = tmp_path / "c.json"
    file.write_text('{"images": [], "x": ' + "7" * 5000 + "}")
    refused("coco", file, "cannot read")
    file.write_text('{"images": ' + "[" * 100_000 + "]" * 100_000 + "}")
    refused("coco", file, "nested too deeply")


def test_coco_too_many_keypoints(tmp_path):
    names = [f"k{i}" for i in range(100_000)]
    refused("coco", write_json(tmp_path / "c.json", coco(tmp_path, keypoints=names)), "limit")


def test_a_named_pipe_as_the_annotation_file(tmp_path):
    fifo = tmp_path / "pipe.json"
    import os

    os.mkfifo(fifo)
    refused("coco", fifo, "named pipe")


# --- YOLO ---------------------------------------------------------------------------------------


def test_yolo_billion_laughs_is_refused_at_once(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 12):
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    lines += ["kpt_shape: [2, 3]", "train: *l"]
    file = tmp_path / "data.yaml"
    file.write_text("\n".join(lines) + "\n")
    refused("yolo", file, "aliases")


def test_yolo_hundred_million_keypoints(tmp_path):
    file = tmp_path / "data.yaml"
    file.write_text("kpt_shape: [100000000, 3]\ntrain: images\n")
    refused("yolo", file, "limit")


def test_yolo_split_that_is_not_a_name(tmp_path):
    file = tmp_path / "data.yaml"
    file.write_text("kpt_shape: [2, 3]\ntrain: [[1, 2], {a: b}]\n")
    refused("yolo", file, "not a folder")


# --- names --------------------------------------------------------------------------------------


def test_terminal_escapes_in_keypoint_names_are_refused(tmp_path):
    data = coco(tmp_path, keypoints=["nose", "\x1b]0;pwned\x07tail"])
    refused("coco", write_json(tmp_path / "c.json", data), "control character")
    shapes = [{"label": "a\x1b[2Jb", "points": [[1, 1]], "shape_type": "point"}]
    doc = {"shapes": shapes, "imagePath": "a.png", "imageData": None}
    refused("labelme", write_json(tmp_path / "l.json", doc), "control character")


# --- CSV exports ---------------------------------------------------------------------------------

HOSTILE = ['=HYPERLINK("http://x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "nose"]


def hostile_labels(tmp_path: Path) -> LabelSet:
    skeleton = Skeleton.create(HOSTILE)
    inst = Instance.empty(len(HOSTILE))
    inst.xy[:] = 3.0
    inst.visibility[:] = Visibility.VISIBLE
    image(tmp_path / "imgs" / "=cmd.png")
    entry = ImageEntry("=cmd.png", 40, 30, instances=[inst])
    return LabelSet(skeleton, tmp_path / "imgs", images=[entry])


def no_formula(rows: list[list[str]]) -> None:
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
            assert not cell.startswith("-") or cell.replace(".", "").lstrip("-").isdigit(), cell


def test_csv_export_escapes_formula_cells(tmp_path):
    (out,) = write_labels("csv", hostile_labels(tmp_path), tmp_path / "out.csv")
    rows = list(csv.reader(io.StringIO(out.read_text())))
    no_formula(rows)
    assert {r[2] for r in rows[1:]} == {"'" + n if n[0] in "=+-@" else n for n in HOSTILE}
    assert rows[1][0] == "'=cmd.png"


def test_dlc_export_escapes_formula_cells_and_reads_them_back(tmp_path):
    labels = hostile_labels(tmp_path)
    (out,) = write_labels("dlc", labels, tmp_path / "CollectedData_x.csv")
    no_formula(list(csv.reader(io.StringIO(out.read_text()))))
    back = read_labels("dlc", out, tmp_path / "imgs")
    assert back.skeleton.keypoints == labels.skeleton.keypoints
    assert back.images[0].path == "=cmd.png"


@pytest.mark.parametrize(
    "value, cell",
    [("=1+2", "'=1+2"), ("-3.5", "-3.5"), ("-1e-3", "-1e-3"), ("+7", "+7"), ("-x", "'-x"),
     ("\tx", "'\tx"), ("\r=x", "'\r=x"), ("@a", "'@a"), ("a=b", "a=b"), (-3.5, -3.5), ("", "")],
)  # fmt: skip
def test_csv_cell_rule(value, cell):
    assert csv_cell(value) == cell
    if isinstance(value, str):
        assert read_csv_cell(csv_cell(value)) == value


def test_an_image_name_longer_than_any_file_system_allows(tmp_path):
    """Found by the fuzz suite: the file system answered ENAMETOOLONG, an OSError naming no
    annotation file."""
    file = tmp_path / "d.csv"
    file.write_text(f"scorer,S,S\nbodyparts,A,A\ncoords,x,y\n-{'1' * 300}.png,1,2\n")
    refused("dlc", file, "not a usable path")


def test_a_lone_surrogate_in_a_yaml_path(tmp_path):
    """Found by the fuzz suite: "\\ud800" escaped in YAML reached the file system as text it
    cannot encode (a UnicodeEncodeError naming no file)."""
    file = tmp_path / "data.yaml"
    file.write_text('kpt_shape: [2, 3]\ntrain: "images/\\ud800"\n')
    refused("yolo", file, "not a folder")
