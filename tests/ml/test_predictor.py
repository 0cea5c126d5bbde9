"""The Predictor answers in original image pixels: the letterbox is undone exactly, whatever
the image's shape, and files it cannot read are reported without stopping the batch."""

from __future__ import annotations

import csv
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from kpstudio.core.prediction_files import write_predictions  # noqa: E402
from kpstudio.core.skeleton import Skeleton  # noqa: E402
from kpstudio.ml.predictor import Prediction, Predictor, collect_image_files  # noqa: E402

SKELETON = Skeleton.create(["head", "tail", "paw"])
# Fixed outputs in units of the 32 px input: (8, 16), (16, 8), (24, 24) input pixels.
FIXED = [0.25, 0.5, 0.5, 0.25, 0.75, 0.75]


@pytest.fixture(scope="module")
def predictor():
    """A seed model whose output ignores the image: zero weights into the coordinate layer and
    a bias holding FIXED, so every answer below can be worked out by hand."""
    from kpstudio.ml.models import build_model

    model = build_model("seed", 3, 32)
    head = model.get_layer("coordinates")
    kernel, _ = head.get_weights()
    head.set_weights([np.zeros_like(kernel), np.array(FIXED, np.float32)])
    return Predictor(model, {"skeleton": SKELETON.to_dict(), "input_size": 32})


def image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_a_wide_image_maps_back_through_the_vertical_padding(predictor):
    # 640x480 → scale 32/640 = 0.05, resized 32x24, padded 4 px top and bottom.
    p = predictor.predict_array(image(480, 640))
    expected = [[8 / 0.05, (16 - 4) / 0.05], [16 / 0.05, (8 - 4) / 0.05],
                [24 / 0.05, (24 - 4) / 0.05]]  # fmt: skip
    np.testing.assert_allclose(p.xy, expected, atol=1e-3)
    np.testing.assert_allclose(p.xy, [[160, 240], [320, 80], [480, 400]], atol=1e-3)
    np.testing.assert_allclose(p.confidence, [1, 1, 1])


def test_a_tall_image_maps_back_through_the_horizontal_padding(predictor):
    # 300 wide x 500 tall → scale 32/500, resized 19x32 (19.2 rounded), padded 6 px left.
    p = predictor.predict_array(image(500, 300))
    sx, sy = 19 / 300, 32 / 500
    expected = [[(8 - 6) / sx, 16 / sy], [(16 - 6) / sx, 8 / sy], [(24 - 6) / sx, 24 / sy]]
    np.testing.assert_allclose(p.xy, expected, atol=1e-3)
    np.testing.assert_allclose(p.xy[:, 1], [250, 125, 375], atol=1e-3)


def test_batches_of_mixed_shapes_match_single_predictions(predictor):
    images = [image(480, 640, 1), image(500, 300, 2), image(32, 32, 3), image(77, 13, 4)]
    batched = predictor.predict_arrays(images, batch_size=3)
    assert len(batched) == 4
    for img, p in zip(images, batched):
        np.testing.assert_allclose(p.xy, predictor.predict_array(img).xy, atol=1e-4)
    assert predictor.predict_arrays([]) == []


def test_gray_images_are_accepted_and_other_arrays_refused(predictor):
    gray = predictor.predict_array(image(480, 640)[:, :, 0])
    np.testing.assert_allclose(gray.xy[0], [160, 240], atol=1e-3)
    with pytest.raises(ValueError, match="uint8"):
        predictor.predict_array(image(48, 64).astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        predictor.predict_array(np.zeros((10, 10, 4), np.uint8))


def test_unreadable_files_are_reported_and_the_rest_predicted(predictor, tmp_path):
    good = []
    for i, (h, w) in enumerate([(480, 640), (500, 300), (40, 40)]):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(image(h, w, i)).save(path)
        good.append(path)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is no png")
    missing = tmp_path / "missing.jpg"
    calls = []
    preds, bad = predictor.predict_files(
        [good[0], broken, good[1], missing, good[2]], batch_size=2,
        progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip
    assert [p.path for p in preds] == [str(p) for p in good]
    np.testing.assert_allclose(preds[0].xy[0], [160, 240], atol=1e-3)
    np.testing.assert_allclose(preds[1].xy[:, 1], [250, 125, 375], atol=1e-3)
    assert [path for path, _ in bad] == [broken, missing]
    assert all(str(path) in message for path, message in bad)
    assert calls == [(2, 5), (4, 5), (5, 5)]


def test_collect_image_files_walks_folders_and_keeps_named_files(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / "a" / ".hidden").mkdir()
    for name in ["a/z.png", "a/B.JPG", "a/deep/c.tif", "a/notes.txt", "a/.x.png",
                 "a/.hidden/d.png", "single.weird"]:  # fmt: skip
        (tmp_path / name).write_bytes(b"")
    found = collect_image_files([tmp_path / "a", tmp_path / "single.weird", tmp_path / "a"])
    rel = [p.relative_to(tmp_path).as_posix() for p in found]
    assert rel == ["a/B.JPG", "a/deep/c.tif", "a/z.png", "single.weird"]
    with pytest.raises(FileNotFoundError, match="nope"):
        collect_image_files([tmp_path / "nope"])


def test_predictions_are_written_as_json_or_csv(tmp_path):
    preds = [
        Prediction("x/1.png", np.array([[1.5, 2.0], [3.0, 4.25], [5.0, 6.0]]),
                   np.array([0.9, 0.5, 0.125])),
        Prediction("x/2.png", np.zeros((3, 2)), np.ones(3)),
    ]  # fmt: skip
    write_predictions(preds, SKELETON, tmp_path / "out.json")
    data = json.loads((tmp_path / "out.json").read_text())
    assert [d["image"] for d in data] == ["x/1.png", "x/2.png"]
    assert list(data[0]["keypoints"]) == ["head", "tail", "paw"]
    assert data[0]["keypoints"]["tail"] == {"x": 3.0, "y": 4.25, "confidence": 0.5}

    write_predictions(preds, SKELETON, tmp_path / "out.csv")
    with open(tmp_path / "out.csv", newline="") as fp:
        rows = list(csv.DictReader(fp))
    assert len(rows) == 6 and list(rows[0]) == ["image", "keypoint", "x", "y", "confidence"]
    assert rows[2] == {"image": "x/1.png", "keypoint": "paw", "x": "5.0", "y": "6.0",
                       "confidence": "0.125"}  # fmt: skip

    with pytest.raises(ValueError, match=r"\.json or \.csv"):
        write_predictions(preds, SKELETON, tmp_path / "out.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.json"]
