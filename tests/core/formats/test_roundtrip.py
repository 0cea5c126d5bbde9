"""write_labels → read_labels gives back the same labels, up to each format's documented loss.

Losses allowed here, as the format modules document them:
- every format: instances with no labeled keypoint are not exported (they carry nothing);
- COCO, DeepLabCut: left/right pairs are re-inferred from the names;
- DeepLabCut, YOLO: edges are not stored;
- labelme stores no skeleton at all: the caller passes one (without it, the keypoints are the
  labeled names in order of first appearance — tested separately);
- DeepLabCut: no visibility — occluded comes back visible;
- YOLO: coordinates go through 6-decimal normalised values; images are re-homed under
  images/<split>/ and the split None becomes train.
"""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpstudio.core.formats import infer_flip_pairs, read_labels, write_labels
from kpstudio.core.labelset import ImageEntry, Instance, LabelSet
from kpstudio.core.skeleton import Skeleton

NAME_POOL = ["nose", "left_paw", "right_paw", "tail", "Head", "ear A", "spine", "hip"]
SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
TOL = 1e-3


@st.composite
def label_specs(draw):
    """A skeleton and images as plain data; `build` writes the images and makes the LabelSet."""
    names = draw(st.lists(st.sampled_from(NAME_POOL), min_size=1, max_size=5, unique=True))
    chain = list(zip(names, names[1:]))
    edges = [e for e in chain if draw(st.booleans())]
    images = []
    for i in range(draw(st.integers(1, 3))):
        w, h = draw(st.integers(4, 80)), draw(st.integers(4, 80))
        folder = draw(st.sampled_from(["", "sub/", "a b/"]))
        split = draw(st.sampled_from([None, "train", "val"]))
        instances = []
        for _ in range(draw(st.integers(0, 2))):
            vis = draw(
                st.lists(st.sampled_from([0, 1, 2]), min_size=len(names), max_size=len(names))
            )
            xy = [
                (draw(st.floats(0, w)), draw(st.floats(0, h))) if v else (np.nan, np.nan)
                for v in vis
            ]
            instances.append((xy, vis))
        images.append((f"{folder}img{i}.png", w, h, split, instances))
    return names, edges, images


def build(spec, root: Path) -> LabelSet:
    names, edges, images = spec
    skeleton = Skeleton.create(names, edges, infer_flip_pairs(names))
    labels = LabelSet(skeleton, root)
    for path, w, h, split, instances in images:
        file = root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        ok, data = cv2.imencode(".png", np.full((h, w, 3), 127, np.uint8))
        assert ok
        file.write_bytes(data.tobytes())
        entry = ImageEntry(path, w, h, split=split)
        for xy, vis in instances:
            entry.instances.append(Instance(np.array(xy, float), np.array(vis, np.int8)))
        labels.images.append(entry)
    return labels


def assert_same(original: LabelSet, back: LabelSet, fmt: str) -> None:
    assert back.skeleton.keypoints == original.skeleton.keypoints
    names = original.skeleton.keypoints
    if fmt == "labelme":  # the caller's skeleton: labelme files cannot hold one
        assert back.skeleton == original.skeleton
    elif fmt == "coco":
        assert {frozenset(e) for e in back.skeleton.edges} == {
            frozenset(e) for e in original.skeleton.edges
        }
    else:
        assert back.skeleton.edges == ()
    pairs = {frozenset(p) for p in back.skeleton.flip_pairs}
    # The built skeletons use the inferred pairs, so every format must give exactly those.
    assert pairs == {frozenset(p) for p in infer_flip_pairs(names)}
    by_path = {e.path: e for e in back.images}
    assert len(by_path) == len(original.images)
    for entry in original.images:
        split = entry.split or "train"
        path = f"images/{split}/{entry.path}" if fmt == "yolo" else entry.path
        got = by_path[path]
        assert (got.width, got.height) == (entry.width, entry.height)
        if fmt == "yolo":
            assert got.split == split
        kept = [i for i in entry.instances if i.labeled().any()]
        assert len(got.instances) == len(kept)
        for a, b in zip(kept, got.instances):
            vis = a.visibility.copy()
            if fmt == "dlc":
                vis[vis == 1] = 2
            assert b.visibility.tolist() == vis.tolist()
            lab = a.labeled()
            np.testing.assert_allclose(b.xy[lab], a.xy[lab], atol=TOL, rtol=0)
            assert np.isnan(b.xy[~lab]).all()


def round_trip(fmt: str, spec) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        labels = build(spec, root)
        out = Path(tmp) / "export"
        written = write_labels(fmt, labels, out)
        assert written and all(p.is_file() for p in written)
        source = {
            "coco": written[0],
            "dlc": written[0],
            "labelme": out,
            "yolo": out / "data.yaml",
        }[fmt]
        options = {"skeleton": labels.skeleton} if fmt == "labelme" else {}
        back = read_labels(fmt, source, images_root=None if fmt == "yolo" else root, **options)
        assert_same(labels, back, fmt)
        assert back.warnings == []


@SETTINGS
@given(label_specs())
def test_coco_round_trip(spec):
    round_trip("coco", spec)


@SETTINGS
@given(label_specs())
def test_labelme_round_trip(spec):
    round_trip("labelme", spec)


@SETTINGS
@given(label_specs())
def test_dlc_round_trip(spec):
    round_trip("dlc", spec)


@SETTINGS
@given(label_specs())
def test_yolo_round_trip(spec):
    round_trip("yolo", spec)


@SETTINGS
@given(label_specs())
def test_csv_export_has_one_row_per_labeled_keypoint(spec):
    with tempfile.TemporaryDirectory() as tmp:
        labels = build(spec, Path(tmp) / "data")
        (path,) = write_labels("csv", labels, Path(tmp) / "out.csv")
        lines = path.read_text().splitlines()
        assert lines[0] == "image,instance,keypoint,x,y,visibility"
        expected = sum(int(i.labeled().sum()) for e in labels.images for i in e.instances)
        assert len(lines) - 1 == expected
        for row in csv.DictReader(lines):
            entry = next(e for e in labels.images if e.path == row["image"])
            inst = entry.instances[int(row["instance"])]
            j = labels.skeleton.keypoints.index(row["keypoint"])
            np.testing.assert_allclose([float(row["x"]), float(row["y"])], inst.xy[j], atol=TOL)
            assert row["visibility"] == {1: "occluded", 2: "visible"}[int(inst.visibility[j])]


# --- COCO export is valid COCO ------------------------------------------------------------------


def _coco_eval_ap(annotations: Path, sigmas: np.ndarray | None = None) -> float:
    coco = pytest.importorskip("pycocotools.coco")
    cocoeval = pytest.importorskip("pycocotools.cocoeval")
    gt = coco.COCO(str(annotations))
    dets = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "keypoints": a["keypoints"],
            "score": 1.0,
        }
        for a in gt.dataset["annotations"]
    ]
    ev = cocoeval.COCOeval(gt, gt.loadRes(dets), "keypoints")
    if sigmas is not None:
        ev.params.kpt_oks_sigmas = sigmas
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return float(ev.stats[0])


def test_coco_export_of_mmpose_file_loads_in_pycocotools_and_scores_ap_1(tmp_path):
    src = SHARED / "peer-files" / "coco" / "mmpose-coco"
    if not src.is_dir():
        pytest.skip("peer files are not present")
    labels = read_labels("coco", src / "test_coco.json")
    (path,) = write_labels("coco", labels, tmp_path / "out.json")
    data = json.loads(path.read_text())
    assert {"info", "licenses", "images", "annotations", "categories"} <= data.keys()
    assert len(data["annotations"]) == 12  # the 2 annotations without keypoints carry nothing
    ann = data["annotations"][0]
    assert ann["iscrowd"] == 0 and ann["area"] > 0 and len(ann["bbox"]) == 4
    assert data["categories"][0]["skeleton"][0] == [16, 14]  # 1-based, as read
    assert _coco_eval_ap(path) == pytest.approx(1.0)


def test_coco_export_single_point_still_has_area_and_ap_1(tmp_path):
    labels = build(
        (
            ["a", "b", "c"],
            [("a", "b")],
            [
                (
                    "x.png",
                    30,
                    20,
                    None,
                    [
                        ([(0.0, 0.0), (np.nan, np.nan), (np.nan, np.nan)], [2, 0, 0]),
                        ([(5.0, 5.0), (25.0, 15.0), (10.0, 10.0)], [2, 1, 2]),
                    ],
                )
            ],
        ),
        tmp_path / "data",
    )
    (path,) = write_labels("coco", labels, tmp_path / "export")
    assert path.name == "annotations.json"
    anns = json.loads(path.read_text())["annotations"]
    assert anns[0]["keypoints"] == [-0.5, -0.5, 2, 0, 0, 0, 0, 0, 0]  # theirs = ours - 0.5
    assert anns[0]["area"] > 0 and anns[0]["num_keypoints"] == 1
    assert _coco_eval_ap(path, np.full(3, 0.05)) == pytest.approx(1.0)
