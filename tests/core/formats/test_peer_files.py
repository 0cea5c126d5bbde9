"""Importers against real files written by other tools (../shared/peer-files)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED  # noqa: E402

from kpstudio.core.formats import read_labels
from kpstudio.core.labelset import LabelError, Visibility
from kpstudio.core.skeleton import Skeleton

PEER = SHARED / "peer-files"
OPENFIELD_IMAGES = SHARED / "datasets" / "dlc_openfield_mouse" / "images"
OPENFIELD_CSV = (
    PEER
    / "deeplabcut"
    / "openfield-Pranav-2018-10-30"
    / "labeled-data"
    / "m4s1"
    / "CollectedData_Pranav.csv"
)


def peer(*parts: str) -> Path:
    path = PEER.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"peer file {path} is not present")
    return path


def write_image(path: Path, width: int, height: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix, np.zeros((height, width, 3), np.uint8))
    assert ok
    path.write_bytes(data.tobytes())


# --- COCO ---------------------------------------------------------------------------------------


def test_mmpose_coco_people_keep_every_instance_and_shift_half_a_pixel():
    file = peer("coco", "mmpose-coco", "test_coco.json")
    labels = read_labels("coco", file)
    raw = json.loads(file.read_text())
    assert len(labels.images) == 4
    assert sum(len(e.instances) for e in labels.images) == 14
    assert len(labels.skeleton) == 17 and len(labels.skeleton.edges) == 19
    assert ("left_eye", "right_eye") in labels.skeleton.flip_pairs
    assert len(labels.skeleton.flip_pairs) == 8
    vis = np.concatenate([i.visibility for e in labels.images for i in e.instances])
    assert set(vis.tolist()) == {0, 1, 2}
    empty = [i for e in labels.images for i in e.instances if not i.labeled().any()]
    assert len(empty) == 2  # annotations with no labeled keypoint are still instances
    # Sizes come from the image files and agree with the JSON.
    sizes = {im["file_name"]: (im["width"], im["height"]) for im in raw["images"]}
    assert {e.path: (e.width, e.height) for e in labels.images} == sizes
    # First annotation's nose, in our corner convention.
    ann = raw["annotations"][0]
    entry = next(
        e
        for e in labels.images
        if e.path == next(i["file_name"] for i in raw["images"] if i["id"] == ann["image_id"])
    )
    x, y, v = ann["keypoints"][:3]
    np.testing.assert_allclose(entry.instances[0].xy[0], [x + 0.5, y + 0.5])
    assert entry.instances[0].visibility[0] == v
    for inst in (i for e in labels.images for i in e.instances):
        assert np.isnan(inst.xy[inst.visibility == 0]).all()


def test_mmpose_fly_without_info_or_licenses():
    file = peer("coco", "mmpose-fly", "test_fly.json")
    labels = read_labels("coco", file)
    raw = json.loads(file.read_text())
    assert len(labels.images) == 2 and len(labels.skeleton) == 32
    assert [len(e.instances) for e in labels.images] == [1, 1]
    assert {(e.width, e.height) for e in labels.images} == {(192, 192)}
    unique_edges = {frozenset(p) for p in raw["categories"][0]["skeleton"] if p[0] != p[1]}
    assert len(labels.skeleton.edges) == len(unique_edges)
    # Side letters as their own word: eyeL/eyeR, forelegL1/forelegR1, wingL/wingR.
    assert ("eyeL", "eyeR") in labels.skeleton.flip_pairs
    assert ("hindlegL4", "hindlegR4") in labels.skeleton.flip_pairs
    assert len(labels.skeleton.flip_pairs) == 14


# --- labelme ------------------------------------------------------------------------------------


def test_labelme_primitives_takes_the_point_and_skips_other_shapes_with_one_warning():
    labels = read_labels("labelme", peer("labelme", "primitives", "primitives.json"))
    assert labels.skeleton.keypoints == ("point",)
    (entry,) = labels.images
    assert (entry.path, entry.width, entry.height) == ("primitives.jpg", 560, 450)
    (inst,) = entry.instances
    np.testing.assert_allclose(inst.xy, [[345.0, 174.0]])  # corner convention: no shift
    assert inst.visibility.tolist() == [Visibility.VISIBLE]
    assert len(labels.warnings) == 1
    assert "skipped 7 non-point shapes" in labels.warnings[0]
    assert "2 rectangle" in labels.warnings[0]


def test_labelme_polygons_only_is_refused_without_a_skeleton():
    file = peer("labelme", "tutorial", "apc2016_obj3.json")
    with pytest.raises(LabelError, match="no point shapes") as err:
        read_labels("labelme", file)
    assert "apc2016_obj3.json" in str(err.value)


def test_labelme_embedded_image_is_carried_when_a_skeleton_is_given():
    file = peer("labelme", "tutorial", "apc2016_obj3.json")
    labels = read_labels("labelme", file, skeleton=Skeleton.create(["a"]))
    (entry,) = labels.images
    # imagePath names the JSON itself; the embedded JPEG gets the JSON's stem.
    assert entry.path == "apc2016_obj3.jpg"
    assert (entry.width, entry.height) == (1210, 907)
    assert entry.data is not None and entry.data[:2] == b"\xff\xd8"
    assert entry.instances == []
    assert any("4 polygon" in w for w in labels.warnings)


# --- DeepLabCut ---------------------------------------------------------------------------------


def test_dlc_openfield_names_the_missing_images():
    peer("deeplabcut", "openfield-Pranav-2018-10-30")
    with pytest.raises(LabelError, match="111 of the 116 images") as err:
        read_labels("dlc", OPENFIELD_CSV)
    assert "CollectedData_Pranav.csv" in str(err.value)
    assert "img0005.png" in str(err.value)


def test_dlc_openfield_skip_missing_keeps_the_five_present_images():
    peer("deeplabcut", "openfield-Pranav-2018-10-30")
    labels = read_labels("dlc", OPENFIELD_CSV, skip_missing=True)
    assert [e.path for e in labels.images] == [f"img000{i}.png" for i in range(5)]
    assert labels.skeleton.keypoints == ("snout", "leftear", "rightear", "tailbase")
    assert labels.skeleton.flip_pairs == (("leftear", "rightear"),)
    assert len(labels.warnings) == 1 and "111 of the 116" in labels.warnings[0]


def test_dlc_openfield_with_the_dataset_images_labels_all_116_at_csv_plus_half():
    peer("deeplabcut", "openfield-Pranav-2018-10-30")
    if not OPENFIELD_IMAGES.is_dir():
        pytest.skip("dlc_openfield_mouse images are not present")
    labels = read_labels("dlc", OPENFIELD_CSV, images_root=OPENFIELD_IMAGES)
    assert len(labels.images) == 116 and labels.labeled_images == 116
    assert labels.root == OPENFIELD_IMAGES
    rows = list(csv.reader(OPENFIELD_CSV.open()))[3:]
    by_path = {e.path: e for e in labels.images}
    for row in rows:
        entry = by_path[Path(row[0]).name]
        (inst,) = entry.instances
        for j in range(4):
            if row[1 + 2 * j]:
                expect = [float(row[1 + 2 * j]) + 0.5, float(row[2 + 2 * j]) + 0.5]
                np.testing.assert_allclose(inst.xy[j], expect, atol=1e-9)
            else:
                assert inst.visibility[j] == 0 and np.isnan(inst.xy[j]).all()


@pytest.mark.parametrize("name", ["dlc_testdata.csv", "dlc_testdata_v2.csv"])
def test_dlc_sleap_single_animal_both_layouts(name):
    labels = read_labels("dlc", peer("deeplabcut", "sleap-testdata", "labeled-data", "video", name))
    assert labels.skeleton.keypoints == ("A", "B", "C")
    assert [e.path for e in labels.images] == [f"img00{i}.png" for i in range(4)]
    img0, img1, img2, img3 = labels.images
    np.testing.assert_allclose(img0.instances[0].xy, [[0.5, 1.5], [2.5, 3.5], [4.5, 5.5]])
    assert img1.instances[0].visibility.tolist() == [2, 0, 2]  # B missing
    assert img2.instances == []  # the all-empty row: an image with no labels
    np.testing.assert_allclose(img3.instances[0].xy[2], [26.5, 27.5])


@pytest.mark.parametrize("name", ["madlc_testdata.csv", "madlc_testdata_v2.csv"])
def test_dlc_sleap_multi_animal_individuals_become_instances(name):
    labels = read_labels("dlc", peer("deeplabcut", "sleap-testdata", "labeled-data", "video", name))
    assert labels.skeleton.keypoints == ("A", "B", "C")
    counts = [len(e.instances) for e in labels.images]
    assert counts == [2, 2, 0, 1]
    np.testing.assert_allclose(labels.images[0].instances[1].xy[0], [6.5, 7.5])
    assert labels.images[1].instances[1].visibility.tolist() == [2, 0, 2]


@pytest.mark.parametrize(
    "name", ["maudlc_testdata.csv", "maudlc_testdata_v2.csv", "CollectedData_LM.csv"]
)
def test_dlc_unique_bodyparts_are_refused_clearly(name):
    file = peer("deeplabcut", "sleap-testdata", "labeled-data", "video", name)
    with pytest.raises(LabelError, match="unique bodyparts") as err:
        read_labels("dlc", file)
    assert name in str(err.value) and "'single'" in str(err.value)
    assert "D, E" in str(err.value)


# --- YOLO ---------------------------------------------------------------------------------------


def test_yolo_datumaro_pose_with_a_supplied_image(tmp_path):
    src = peer("yolo-pose", "datumaro-yolov8_pose")
    shutil.copy(src / "data.yaml", tmp_path / "data.yaml")
    shutil.copytree(src / "labels", tmp_path / "labels")
    write_image(tmp_path / "images" / "train" / "1.jpg", 60, 40)
    labels = read_labels("yolo", tmp_path / "data.yaml")
    assert labels.skeleton.keypoints == ("kp0", "kp1", "kp2")
    (entry,) = labels.images
    assert (entry.path, entry.width, entry.height, entry.split) == (
        "images/train/1.jpg",
        60,
        40,
        "train",
    )
    (inst,) = entry.instances
    np.testing.assert_allclose(inst.xy, [[6, 8], [18, 16], [30, 24]], atol=1e-9)
    assert inst.visibility.tolist() == [2, 2, 2]


def test_yolo_coco8_pose_yaml_flip_idx_and_splits(tmp_path):
    src = peer("yolo-pose", "ultralytics-cfg", "coco8-pose.yaml")
    shutil.copy(src, tmp_path / "coco8-pose.yaml")
    write_image(tmp_path / "images" / "train" / "a.jpg", 100, 50)
    write_image(tmp_path / "images" / "val" / "b.png", 20, 30)
    kps = " ".join("0.5 0.5 2" if j == 5 else "0 0 0" for j in range(17))
    (tmp_path / "labels" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train" / "a.txt").write_text(f"0 0.5 0.5 0.2 0.2 {kps}\n")
    labels = read_labels("yolo", tmp_path / "coco8-pose.yaml")
    assert len(labels.skeleton) == 17
    pairs = {frozenset(p) for p in labels.skeleton.flip_pairs}
    assert len(pairs) == 8 and frozenset(("kp1", "kp2")) in pairs
    assert frozenset(("kp15", "kp16")) in pairs
    assert labels.skeleton.flip_permutation() == [
        0,
        2,
        1,
        4,
        3,
        6,
        5,
        8,
        7,
        10,
        9,
        12,
        11,
        14,
        13,
        16,
        15,
    ]
    a, b = labels.images
    assert (a.split, b.split) == ("train", "val")
    assert b.instances == []  # no label file: a background image
    assert a.instances[0].visibility.tolist() == [2 if j == 5 else 0 for j in range(17)]
    np.testing.assert_allclose(a.instances[0].xy[5], [50, 25])
    # The YAML's ../datasets path points outside its folder: ignored with a warning.
    assert any("../datasets/coco8-pose" in w for w in labels.warnings)


def test_yolo_tiger_pose_two_columns_and_identity_flip(tmp_path):
    shutil.copy(peer("yolo-pose", "ultralytics-cfg", "tiger-pose.yaml"), tmp_path / "t.yaml")
    write_image(tmp_path / "train" / "images" / "t1.jpg", 40, 40)
    write_image(tmp_path / "val" / "images" / "t2.jpg", 40, 40)
    kps = " ".join("0.25 0.75" if j == 0 else "0 0" for j in range(12))
    (tmp_path / "train" / "labels").mkdir()
    (tmp_path / "train" / "labels" / "t1.txt").write_text(f"0 0.5 0.5 1 1 {kps}\n")
    labels = read_labels("yolo", tmp_path / "t.yaml")
    assert len(labels.skeleton) == 12 and labels.skeleton.flip_pairs == ()
    (inst,) = labels.images[0].instances
    assert inst.visibility.tolist() == [2] + [0] * 11  # x = y = 0 is absent in [K, 2]
    np.testing.assert_allclose(inst.xy[0], [10, 30])
