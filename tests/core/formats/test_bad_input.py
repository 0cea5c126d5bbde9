"""Importers refuse bad files with a message naming the file and the entry."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from kpstudio.core.formats import read_labels, write_labels
from kpstudio.core.formats.naming import infer_flip_pairs
from kpstudio.core.formats.yolo import label_path
from kpstudio.core.labelset import LabelError

W, H = 40, 30


def write_image(path: Path, width: int = W, height: int = H) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix, np.zeros((height, width, 3), np.uint8))
    assert ok
    path.write_bytes(data.tobytes())
    return path


def refused(fmt: str, file: Path, *fragments: str, **kwargs) -> LabelError:
    with pytest.raises(LabelError) as err:
        read_labels(fmt, file, **kwargs)
    message = str(err.value)
    assert file.name in message, message
    for fragment in fragments:
        assert fragment in message, message
    return err.value


# --- COCO ---------------------------------------------------------------------------------------


def coco_doc(file_name: str = "a.png", kps=None, names=("nose", "tail")) -> dict:
    return {
        "images": [{"id": 1, "file_name": file_name, "width": W, "height": H}],
        "annotations": [
            {
                "id": 7,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "keypoints": kps if kps is not None else [3, 4, 2, 10, 20, 1],
            }
        ],
        "categories": [{"id": 1, "name": "mouse", "keypoints": list(names), "skeleton": [[1, 2]]}],
    }


def coco_file(tmp_path: Path, doc: dict | str, name: str = "ann.json") -> Path:
    write_image(tmp_path / "a.png")
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_coco_valid_file_reads(tmp_path):
    labels = read_labels("coco", coco_file(tmp_path, coco_doc()))
    (inst,) = labels.images[0].instances
    np.testing.assert_allclose(inst.xy, [[3.5, 4.5], [10.5, 20.5]])
    assert inst.visibility.tolist() == [2, 1]
    assert labels.skeleton.edges == (("nose", "tail"),)


def test_coco_nan_coordinate(tmp_path):
    # json.dumps writes NaN as the bare token NaN, which Python's parser (and others) accept.
    file = coco_file(tmp_path, coco_doc(kps=[3, float("nan"), 2, 10, 20, 1]))
    refused("coco", file, "annotation 7", "'nose'", "not finite")


def test_coco_path_escaping_the_root(tmp_path):
    write_image(tmp_path / "escape.png")
    data = tmp_path / "data"
    data.mkdir()
    file = coco_file(data, coco_doc("../escape.png"))
    refused("coco", file, "image id 1", "../escape.png")


def test_coco_absolute_path_outside_the_root(tmp_path):
    outside = write_image(tmp_path / "elsewhere" / "b.png")
    data = tmp_path / "data"
    data.mkdir()
    refused("coco", coco_file(data, coco_doc(str(outside))), "image id 1", "outside")


def test_coco_absolute_path_inside_the_root_is_fine(tmp_path):
    file = coco_file(tmp_path, coco_doc(str(tmp_path / "a.png")))
    assert read_labels("coco", file).images[0].path == "a.png"


def test_coco_wrong_keypoint_count(tmp_path):
    file = coco_file(tmp_path, coco_doc(kps=[3, 4, 2]))
    refused("coco", file, "annotation 7", "3 numbers", "need 6")


def test_coco_duplicate_keypoint_names(tmp_path):
    file = coco_file(tmp_path, coco_doc(names=("nose", "Nose")))
    refused("coco", file, "'Nose'", "twice")


def test_coco_malformed_json(tmp_path):
    file = coco_file(tmp_path, '{"images": [}')
    refused("coco", file, "malformed JSON", "line 1")


def test_coco_point_outside_the_image(tmp_path):
    file = coco_file(tmp_path, coco_doc(kps=[3, 4, 2, W + 5, 20, 2]))
    refused("coco", file, "annotation 7", "'tail'", "outside")


def test_coco_half_pixel_overshoot_is_clamped_with_a_warning(tmp_path):
    # COCO x = W is our W + 0.5: half a pixel past the right edge.
    labels = read_labels("coco", coco_file(tmp_path, coco_doc(kps=[3, 4, 2, W, 20, 2])))
    np.testing.assert_allclose(labels.images[0].instances[0].xy[1], [W, 20.5])
    (warning,) = labels.warnings
    assert "ann.json" in warning and "annotation 7" in warning and "clamped" in warning


def test_coco_bad_visibility_and_stated_size(tmp_path):
    refused("coco", coco_file(tmp_path, coco_doc(kps=[3, 4, 3, 1, 1, 1])), "'nose'", "visibility")
    doc = coco_doc()
    doc["images"][0]["width"] = 41
    refused("coco", coco_file(tmp_path, doc), "41×30", "40×30")


def test_coco_several_keypoint_categories_and_crowds(tmp_path):
    doc = coco_doc()
    doc["categories"].append({"id": 2, "name": "cat", "keypoints": ["x"]})
    refused("coco", coco_file(tmp_path, doc), "'mouse'", "'cat'")
    doc = coco_doc()
    doc["annotations"].append(dict(doc["annotations"][0], id=8, iscrowd=1))
    labels = read_labels("coco", coco_file(tmp_path, doc))
    assert len(labels.images[0].instances) == 1
    assert any("1 crowd" in w for w in labels.warnings)


def test_coco_missing_images_are_counted_or_skipped(tmp_path):
    doc = coco_doc()
    doc["images"] += [{"id": i, "file_name": f"gone{i}.png"} for i in range(2, 9)]
    file = coco_file(tmp_path, doc)
    refused("coco", file, "7 of the 8 images", "gone2.png", "...")
    labels = read_labels("coco", file, skip_missing=True)
    assert [e.path for e in labels.images] == ["a.png"]
    assert "7 of the 8" in labels.warnings[0]


def test_coco_images_subfolder_is_the_fallback_root(tmp_path):
    write_image(tmp_path / "images" / "a.png")
    (tmp_path / "ann.json").write_text(json.dumps(coco_doc()))
    labels = read_labels("coco", tmp_path / "ann.json")
    assert labels.root == tmp_path / "images" and labels.images[0].path == "a.png"


def test_coco_path_found_by_dropping_leading_folders(tmp_path):
    file = coco_file(tmp_path, coco_doc("some/old/place/a.png"))
    assert read_labels("coco", file).images[0].path == "a.png"


# --- labelme ------------------------------------------------------------------------------------


def labelme_doc(points, image_path="a.png", **extra) -> dict:
    shapes = [
        {
            "label": label,
            "points": [[x, y]],
            "group_id": group,
            "shape_type": "point",
            "flags": flags,
        }
        for label, x, y, group, flags in points
    ]
    return {
        "version": "5.5.0",
        "flags": {},
        "shapes": shapes,
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": H,
        "imageWidth": W,
        **extra,
    }


def labelme_file(tmp_path: Path, doc: dict | str, name: str = "a.json") -> Path:
    write_image(tmp_path / "a.png")
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_labelme_instances_by_group_and_occluded_flag(tmp_path):
    doc = labelme_doc(
        [("tail", 1, 2, 1, {}), ("nose", 3, 4, None, {"occluded": True}), ("nose", 5, 6, 1, {})]
    )
    labels = read_labels("labelme", labelme_file(tmp_path, doc))
    assert labels.skeleton.keypoints == ("tail", "nose")  # order of first appearance
    first, second = labels.images[0].instances  # group None (= 0) then 1
    assert first.visibility.tolist() == [0, 1] and second.visibility.tolist() == [2, 2]
    np.testing.assert_allclose(second.xy, [[1, 2], [5, 6]])


def test_labelme_nan_coordinate(tmp_path):
    file = labelme_file(tmp_path, labelme_doc([("nose", float("nan"), 2, None, {})]))
    refused("labelme", file, "shape 0", "'nose'")


def test_labelme_path_escaping_the_root(tmp_path):
    write_image(tmp_path / "escape.png")
    (tmp_path / "data").mkdir()
    file = labelme_file(tmp_path / "data", labelme_doc([("a", 1, 1, None, {})], "../escape.png"))
    refused("labelme", file, "escape")


def test_labelme_absolute_path_outside_the_root(tmp_path):
    outside = write_image(tmp_path / "elsewhere" / "b.png")
    (tmp_path / "data").mkdir()
    file = labelme_file(tmp_path / "data", labelme_doc([("a", 1, 1, None, {})], str(outside)))
    refused("labelme", file, "outside")


def test_labelme_duplicate_names_and_duplicate_points(tmp_path):
    doc = labelme_doc([("nose", 1, 1, None, {}), ("Nose", 2, 2, None, {})])
    refused("labelme", labelme_file(tmp_path, doc), "'Nose'", "twice")
    doc = labelme_doc([("nose", 1, 1, 2, {}), ("nose", 2, 2, 2, {})])
    refused("labelme", labelme_file(tmp_path, doc), "shape 1", "'nose'", "shape 0")


def test_labelme_malformed_json_and_bad_point_shape(tmp_path):
    refused("labelme", labelme_file(tmp_path, "{not json"), "malformed JSON")
    doc = labelme_doc([("nose", 1, 1, None, {})])
    doc["shapes"][0]["points"].append([2, 2])
    refused("labelme", labelme_file(tmp_path, doc), "shape 0", "exactly one")


def test_labelme_out_of_image_and_overshoot(tmp_path):
    doc = labelme_doc([("nose", W + 3, 1, None, {})])
    refused("labelme", labelme_file(tmp_path, doc), "shape 0", "outside")
    doc = labelme_doc([("nose", -0.5, 1, None, {})])
    labels = read_labels("labelme", labelme_file(tmp_path, doc))
    np.testing.assert_allclose(labels.images[0].instances[0].xy, [[0, 1]])
    assert any("clamped" in w and "shape 0" in w for w in labels.warnings)


def test_labelme_stated_size_must_match(tmp_path):
    doc = labelme_doc([("nose", 1, 1, None, {})], imageWidth=W * 2)
    refused("labelme", labelme_file(tmp_path, doc), f"{W * 2}×{H}", f"{W}×{H}")


def test_labelme_unknown_keypoint_with_a_given_skeleton(tmp_path):
    from kpstudio.core.skeleton import Skeleton

    file = labelme_file(tmp_path, labelme_doc([("paw", 1, 1, None, {})]))
    refused("labelme", file, "shape 0", "'paw'", skeleton=Skeleton.create(["nose"]))


def test_labelme_folder_export_mirrors_image_folders_and_reads_back(tmp_path):
    write_image(tmp_path / "data" / "x" / "a.png")
    write_image(tmp_path / "data" / "y" / "a.png")
    docs = {"x": [("nose", 1, 1, None, {})], "y": [("nose", 2, 2, None, {"occluded": True})]}
    for sub, pts in docs.items():
        (tmp_path / "data" / sub / "a.json").write_text(json.dumps(labelme_doc(pts)))
    labels = read_labels("labelme", tmp_path / "data")
    assert [e.path for e in labels.images] == ["x/a.png", "y/a.png"]
    written = write_labels("labelme", labels, tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in written] == ["x/a.json", "y/a.json"]
    doc = json.loads(written[1].read_text())
    assert doc["imagePath"] == "../../data/y/a.png" and doc["imageData"] is None
    assert doc["shapes"][0]["flags"] == {"occluded": True} and doc["shapes"][0]["group_id"] is None
    back = read_labels("labelme", tmp_path / "out", images_root=tmp_path / "data")
    assert [e.path for e in back.images] == ["x/a.png", "y/a.png"]
    assert back.images[1].instances[0].visibility.tolist() == [1]


def test_labelme_embedded_image_without_file(tmp_path):
    import base64

    ok, png = cv2.imencode(".png", np.zeros((7, 9, 3), np.uint8))
    doc = labelme_doc(
        [("nose", 1, 1, None, {})],
        "gone.png",
        imageData=base64.b64encode(png.tobytes()).decode(),
        imageWidth=9,
        imageHeight=7,
    )
    (tmp_path / "e.json").write_text(json.dumps(doc))
    labels = read_labels("labelme", tmp_path / "e.json")
    (entry,) = labels.images
    assert (entry.path, entry.width, entry.height) == ("gone.png", 9, 7)
    assert entry.data == png.tobytes()
    doc["imageData"] = "@@not base64@@"
    (tmp_path / "e.json").write_text(json.dumps(doc))
    refused("labelme", tmp_path / "e.json", "imageData")


# --- DeepLabCut ---------------------------------------------------------------------------------

DLC_HEADER = "scorer,me,me,me,me\nbodyparts,nose,nose,tail,tail\ncoords,x,y,x,y\n"


def dlc_file(tmp_path: Path, body: str, header: str = DLC_HEADER) -> Path:
    write_image(tmp_path / "labeled-data" / "v" / "a.png")
    path = tmp_path / "labeled-data" / "v" / "CollectedData_me.csv"
    path.write_text(header + body)
    return path


def test_dlc_infinite_coordinate(tmp_path):
    file = dlc_file(tmp_path, "labeled-data/v/a.png,1,inf,3,4\n")
    refused("dlc", file, "row 4", "'nose'", "not finite")


def test_dlc_text_coordinate_and_half_point(tmp_path):
    refused("dlc", dlc_file(tmp_path, "labeled-data/v/a.png,1,2,x,4\n"), "row 4", "'tail'")
    refused("dlc", dlc_file(tmp_path, "labeled-data/v/a.png,1,,3,4\n"), "row 4", "only one")


def test_dlc_path_escaping_the_root(tmp_path):
    write_image(tmp_path / "labeled-data" / "escape.png")
    refused("dlc", dlc_file(tmp_path, "../escape.png,1,2,3,4\n"), "row 4", "escape")


def test_dlc_absolute_path_outside_the_root(tmp_path):
    outside = write_image(tmp_path / "elsewhere" / "b.png")
    refused("dlc", dlc_file(tmp_path, f"{outside},1,2,3,4\n"), "row 4", "outside")


def test_dlc_too_many_cells_and_duplicate_bodyparts(tmp_path):
    refused("dlc", dlc_file(tmp_path, "labeled-data/v/a.png,1,2,3,4,5\n"), "row 4", "more cells")
    header = "scorer,me,me,me,me\nbodyparts,nose,nose,Nose,Nose\ncoords,x,y,x,y\n"
    refused("dlc", dlc_file(tmp_path, "labeled-data/v/a.png,1,2,3,4\n", header), "'Nose'")


def test_dlc_bad_header_and_out_of_image(tmp_path):
    refused("dlc", dlc_file(tmp_path, "", "hello,world\n"), "scorer")
    refused("dlc", dlc_file(tmp_path, f"labeled-data/v/a.png,1,2,{W + 2},4\n"), "'tail'", "outside")
    # DLC x = -1 is our -0.5: clamped onto the edge with a warning.
    labels = read_labels("dlc", dlc_file(tmp_path, "labeled-data/v/a.png,-1,2,3,4\n"))
    np.testing.assert_allclose(labels.images[0].instances[0].xy[0], [0, 2.5])
    assert any("row 4" in w and "clamped" in w for w in labels.warnings)


def test_dlc_export_header_single_and_multi_animal(tmp_path):
    labels = read_labels("dlc", dlc_file(tmp_path, "labeled-data/v/a.png,1,2,3,4\n"))
    (path,) = write_labels("dlc", labels, tmp_path / "out")
    assert path.name == "CollectedData_kpstudio.csv"
    lines = path.read_text().splitlines()
    assert lines[0].startswith("scorer,kpstudio") and lines[1].startswith("bodyparts,nose,nose")
    assert lines[3] == "a.png,1,2,3,4"
    labels.images[0].instances.append(labels.images[0].instances[0])
    (path,) = write_labels("dlc", labels, tmp_path / "multi.csv")
    assert path.read_text().splitlines()[1].startswith("individuals,individual1")


# --- YOLO ---------------------------------------------------------------------------------------


def yolo_dataset(tmp_path: Path, line: str, yaml_text: str | None = None) -> Path:
    write_image(tmp_path / "images" / "train" / "a.png")
    (tmp_path / "labels" / "train").mkdir(parents=True, exist_ok=True)
    (tmp_path / "labels" / "train" / "a.txt").write_text(line + "\n")
    path = tmp_path / "data.yaml"
    path.write_text(
        yaml_text
        or "path: .\ntrain: images/train\nkpt_shape: [2, 3]\n"
        "flip_idx: [1, 0]\nkpt_names: {0: [l_paw, r_paw]}\n"
    )
    return path


def test_yolo_reads_names_and_flip(tmp_path):
    labels = read_labels("yolo", yolo_dataset(tmp_path, "0 .5 .5 1 1 .25 .5 2 .5 .5 1"))
    assert labels.skeleton.keypoints == ("l_paw", "r_paw")
    assert labels.skeleton.flip_pairs == (("l_paw", "r_paw"),)
    np.testing.assert_allclose(labels.images[0].instances[0].xy, [[10, 15], [20, 15]])
    assert labels.images[0].instances[0].visibility.tolist() == [2, 1]


def test_yolo_wrong_value_count(tmp_path):
    yolo_dataset(tmp_path, "0 .5 .5 1 1 .25 .5 2")
    with pytest.raises(LabelError, match=r"train/a\.txt: line 1: 8 values.*need 11"):
        read_labels("yolo", tmp_path / "data.yaml")


def test_yolo_nan_and_out_of_image(tmp_path):
    yolo_dataset(tmp_path, "0 .5 .5 1 1 nan .5 2 .5 .5 1")
    with pytest.raises(LabelError, match=r"a\.txt: line 1 keypoint 'l_paw'"):
        read_labels("yolo", tmp_path / "data.yaml")
    yolo_dataset(tmp_path, "0 .5 .5 1 1 1.5 .5 2 .5 .5 1")
    with pytest.raises(LabelError, match=r"a\.txt: line 1 keypoint 'l_paw'.*outside"):
        read_labels("yolo", tmp_path / "data.yaml")


def test_yolo_bad_yaml_flip_and_escaping_split(tmp_path):
    refused("yolo", yolo_dataset(tmp_path, "", "kpt_shape: [2, 3\n"), "malformed YAML")
    bad_flip = "train: images/train\nkpt_shape: [2, 3]\nflip_idx: [1, 1]\n"
    refused("yolo", yolo_dataset(tmp_path, "", bad_flip), "flip_idx")
    escape = "train: ../images/train\nkpt_shape: [2, 3]\n"
    refused("yolo", yolo_dataset(tmp_path, "", escape), "train", "escapes")
    dup = "train: images/train\nkpt_shape: [2, 3]\nkpt_names: [a, A]\n"
    refused("yolo", yolo_dataset(tmp_path, "", dup), "'A'", "twice")


def test_yolo_image_in_two_splits_and_several_classes_warn_once(tmp_path):
    text = "train: images/train\nval: images/train\nkpt_shape: [2, 3]\nnames: [a, b]\n"
    labels = read_labels("yolo", yolo_dataset(tmp_path, "1 .5 .5 1 1 .25 .5 2 0 0 0", text))
    assert [(e.path, e.split) for e in labels.images] == [("images/train/a.png", "train")]
    assert len(labels.images[0].instances) == 1
    assert len(labels.warnings) == 2
    assert "1 images are in more than one split" in labels.warnings[0]
    assert "class ids are dropped" in labels.warnings[1]


def test_yolo_label_rule_and_export_layout(tmp_path):
    assert label_path("images/train/x/a.jpg") == "labels/train/x/a.txt"
    assert label_path("train/images/a.png") == "train/labels/a.txt"
    assert label_path("images/a/images/b.png") == "images/a/labels/b.txt"
    labels = read_labels("yolo", yolo_dataset(tmp_path, "0 .5 .5 1 1 .25 .5 2 0 0 0"))
    out = tmp_path / "export"
    written = write_labels("yolo", labels, out)
    # Our path images/train/a.png keeps its folders, 'images' renamed so the rule still works.
    assert (out / "images" / "train" / "_images" / "train" / "a.png").is_file()
    text = (out / "labels" / "train" / "_images" / "train" / "a.txt").read_text()
    values = text.split()
    assert values[0] == "0" and values[5:] == [
        "0.250000",
        "0.500000",
        "2",
        "0.000000",
        "0.000000",
        "0",
    ]
    assert written[0] == out / "data.yaml"


# --- naming -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "pairs"),
    [
        (["left_eye", "right_eye", "nose"], [("left_eye", "right_eye")]),
        (["rightear", "leftear"], [("leftear", "rightear")]),
        (["l_hand", "R_HAND"], [("l_hand", "R_HAND")]),
        (["LeftFoot", "RightFoot", "LeftHand"], [("LeftFoot", "RightFoot")]),
        (
            ["eyeL", "eyeR", "forelegL1", "forelegR1", "wingL"],
            [("eyeL", "eyeR"), ("forelegL1", "forelegR1")],
        ),
        (["hand_l", "hand_r", "leg"], [("hand_l", "hand_r")]),
        (["left_eye", "nose"], []),  # no partner, no pair
        (["L5", "tail", "bright", "bleft"], []),  # "bright"/"bleft" are not sides
    ],
)
def test_infer_flip_pairs(names, pairs):
    assert infer_flip_pairs(names) == pairs


def test_unknown_format_is_a_usage_error(tmp_path):
    with pytest.raises(ValueError, match="coco, labelme, dlc, yolo"):
        read_labels("xml", tmp_path / "x")
