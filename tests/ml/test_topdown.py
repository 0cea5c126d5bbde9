"""Top-down models: peaks to objects, centred crops, training both networks, the model file,
the predictor returning every object with a score, and the multi-object evaluation."""

from __future__ import annotations

import hashlib
import os

import cv2
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
pytest.importorskip("tensorflow")

from kpstudio.core.instance_matching import evaluate_found  # noqa: E402
from kpstudio.core.labelset import Visibility  # noqa: E402
from kpstudio.core.project import Project  # noqa: E402
from kpstudio.core.skeleton import Skeleton  # noqa: E402
from kpstudio.core.training_set import snapshot  # noqa: E402
from kpstudio.ml.config import TrainConfig  # noqa: E402
from kpstudio.ml.model_file import ModelFileError, read_manifest  # noqa: E402
from kpstudio.ml.predictor import Predictor  # noqa: E402
from kpstudio.ml.topdown import crop_at, decode_peaks, object_centres  # noqa: E402
from kpstudio.ml.train import train  # noqa: E402

NAMES = ("head", "left", "right")
SIDE = 128


def _blob_map(h, w, centres, sigma=1.5):
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.zeros((h, w), np.float32)
    for x, y, peak in centres:
        out = np.maximum(out, peak * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)))
    return out


def test_peaks_are_objects_strongest_first_and_close_ones_merge():
    prob = _blob_map(32, 32, [(5, 6, 0.9), (20, 25, 0.6), (21, 26.5, 0.55), (28, 3, 0.1)])
    found = decode_peaks(prob, threshold=0.2, max_objects=10, min_separation=12.0, stride=4)
    assert [round(s, 2) for *_, s in found] == [0.9, 0.6]  # weak one out, close one merged
    (x0, y0, _), (x1, y1, _) = found
    assert abs(x0 - 5.5 * 4) < 1.0 and abs(y0 - 6.5 * 4) < 1.0  # cell centres, in pixels
    assert decode_peaks(prob, 0.2, 1, 12.0, 4) == found[:1]  # at most max_objects


def test_crops_are_centred_and_padded_at_the_edge():
    canvas = np.arange(10 * 10 * 3, dtype=np.uint8).reshape(10, 10, 3)
    window, origin = crop_at(canvas, (1.0, 1.0), 4)
    assert tuple(origin) == (-1.0, -1.0)
    assert (window[0] == 0).all() and (window[:, 0] == 0).all()
    assert (window[1:, 1:] == canvas[:3, :3]).all()


def test_object_centres_ignore_unlabeled_points_and_objects():
    xy = np.array([[[0, 0], [10, 20], [99, 99]], [[0, 0], [0, 0], [0, 0]]], np.float32)
    vis = np.array([[2, 1, 0], [0, 0, 0]])
    centres, valid = object_centres(xy, vis)
    assert valid.tolist() == [True, False]
    assert centres[0].tolist() == [5.0, 10.0]


def _two_figures(rng):
    """A frame with two small three-point figures (a red head, a green left and a blue right
    point) somewhere apart: each object's keypoints, in pixel-corner coordinates."""
    image = np.full((SIDE, SIDE, 3), 40, np.uint8)
    image += rng.integers(0, 20, image.shape, dtype=np.uint8)
    objects = []
    while len(objects) < 2:
        c = rng.uniform(20, SIDE - 20, 2)
        if objects and np.linalg.norm(c - objects[0][0]) < 40:
            continue
        a = rng.uniform(0, 2 * np.pi)
        d = np.array([np.cos(a), np.sin(a)])
        n = np.array([-d[1], d[0]])
        pts = np.stack([c + 9 * d, c - 6 * d + 6 * n, c - 6 * d - 6 * n])
        objects.append((c, pts))
    for _, pts in objects:
        for (x, y), colour in zip(pts, ((255, 60, 60), (60, 255, 60), (60, 60, 255))):
            cv2.circle(image, (int(x), int(y)), 3, colour, -1)
    return image, [pts + 0.5 for _, pts in objects]


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("topdown") / "pairs"
    rng = np.random.default_rng(3)
    (folder / "images").mkdir(parents=True)
    rows, truths = [], []
    for i in range(24):
        image, objects = _two_figures(rng)
        ok, encoded = cv2.imencode(".png", image)
        path = folder / "images" / f"pair_{i:02d}.png"
        path.write_bytes(encoded.tobytes())
        rows.append((path, SIDE, SIDE, hashlib.sha256(encoded.tobytes()).hexdigest(),
                     "val" if i % 4 == 0 else "train"))  # fmt: skip
        truths.append(objects)
    with Project.create(folder, Skeleton.create(NAMES, [("head", "left")])) as project:
        for image_id, objects in zip(project.add_images(rows), truths):
            for instance, pts in enumerate(objects):
                project.set_labels(image_id, [(n, x, y, Visibility.VISIBLE)
                                              for n, (x, y) in zip(NAMES, pts)],
                                   instance=instance)  # fmt: skip
        data = snapshot(project)
    return folder, data


def test_snapshot_holds_every_object(pairs):
    _, data = pairs
    xy, vis = data.objects()
    assert xy.shape == (24, 2, 3, 2) and (vis == 2).all()
    assert data.fingerprint().objects_per_image["max"] == 2


@pytest.fixture(scope="module")
def trained(pairs):
    _, data = pairs
    config = TrainConfig(epochs=40, batch_size=8, params={"width": 8, "decoder": 16},
                         learning_rate=4e-3)  # fmt: skip
    return train(data, config)


def test_the_plan_chooses_top_down_and_every_object_trains(trained):
    assert trained.config["top_down"] is True
    assert trained.config["plan"]["path"] == "top-down"
    assert trained.config["plan"]["finder_size"] > 0
    assert any("top-down" in note for note in trained.notes)
    m = trained.metrics
    assert m["objects"] == 12  # 6 val images × 2 objects
    assert {"ap", "ap50", "ar", "objects_found", "images_all_found", "mean_px"} <= set(m)


def test_the_model_file_is_evaluated_per_object_like_the_run(trained, pairs):
    """`kpstudio evaluate` and bench_quality score a file's found objects (evaluate_found)
    against every labeled object, as training scored them."""
    _, data = pairs
    val = data.indices("val")
    found, bad = Predictor.from_file(trained.model_path).predict_files_instances(
        [data.paths[i] for i in val])  # fmt: skip
    report = evaluate_found(found, data, val)
    assert not bad and report["objects"] == trained.metrics["objects"] == 12
    assert report["objects_found"] == trained.metrics["objects_found"]
    assert report["ap"] is not None and 0 <= report["ap"] <= 1


def test_the_model_file_holds_both_networks_and_predicts_every_object(trained, pairs):
    _, data = pairs
    manifest = read_manifest(trained.model_path)
    td = manifest["top_down"]
    assert td["crop_size"] == manifest["input_size"] and td["max_objects"] == 4
    predictor = Predictor.from_file(trained.model_path)
    assert predictor.top_down
    images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in data.paths[:6]]
    found = predictor.predict_instances(images)
    assert len(found) == 6
    for objects in found:
        assert len(objects) <= 4
        assert [o.instance for o in objects] == list(range(len(objects)))
        scores = [o.score for o in objects]
        assert scores == sorted(scores, reverse=True)
        for o in objects:
            assert o.xy.shape == (3, 2) and o.confidence.shape == (3,)
    # Trained briefly on an easy task: the finder already finds most figures.
    assert np.mean([len(objects) >= 2 for objects in found]) >= 0.5
    first = predictor.predict_arrays(images[:2])
    assert [p.score for p in first] == [found[0][0].score, found[1][0].score]


def test_a_finder_without_its_manifest_section_is_refused(trained, tmp_path):
    import zipfile

    bad = tmp_path / "bad.kpmodel"
    with zipfile.ZipFile(trained.model_path) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "manifest.json":
                import json

                manifest = json.loads(data)
                del manifest["top_down"]
                data = json.dumps(manifest).encode()
            dst.writestr(info, data)
    with pytest.raises(ModelFileError, match="finder"):
        read_manifest(bad)


def test_predict_writes_every_object_with_its_instance_and_score(trained, pairs, tmp_path):
    import csv

    from kpstudio.cli import main

    folder, _ = pairs
    out = tmp_path / "found.csv"
    assert main(["predict", str(trained.model_path), str(folder / "images"), "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["image", "instance", "score", "keypoint", "x", "y", "confidence"]
    per_image = {}
    for row in rows:
        per_image.setdefault(row["image"], set()).add(int(row["instance"]))
    assert len(per_image) == 24
    assert all(found == set(range(len(found))) for found in per_image.values())


def test_stored_objects_come_back_per_instance(pairs, tmp_path):
    import shutil

    from kpstudio.core.predictions import load_objects, store_predictions, stored_predictions
    from kpstudio.core.runs import start_run

    folder, _ = pairs
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    with Project.open(copy) as project:
        run_id = start_run(project, "default", {}).id
        image_id = project.images()[0].id
        a = (np.array([[1, 2], [3, 4], [5, 6]], float), np.array([0.9, 0.8, 0.7]))
        b = (np.array([[7, 8], [np.nan, np.nan], [9, 10]], float), np.array([0.5, 0.4, 0.3]))
        store_predictions(project, run_id, {image_id: [a, b]})
        found = load_objects(project, image_id, run_id)
        assert len(found) == 2 and np.allclose(found[0][0], a[0])
        assert np.isnan(found[1][0][1]).all() and found[1][1][2] == pytest.approx(0.3)
        assert [p.instance for p in stored_predictions(project, run_id)] == [0, 1]


def test_a_video_of_two_figures_gets_two_tracks_end_to_end(trained, tmp_path):
    """The real top-down model through `kpstudio predict VIDEO --animals 2`: every frame has a
    row per object found, each with a track id below 2."""
    import csv

    from kpstudio.cli import main

    rng = np.random.default_rng(11)
    frame, _ = _two_figures(rng)
    path = tmp_path / "pair.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (SIDE, SIDE))
    for t in range(12):  # the two figures drift right, one pixel a frame
        writer.write(np.roll(frame, t, axis=1))
    writer.release()
    out = tmp_path / "pair.csv"
    labeled = tmp_path / "pair_labeled.mp4"
    assert main(["predict", str(trained.model_path), str(path), "-o", str(out), "--animals", "2",
                 "--labeled-video", str(labeled)]) == 0  # fmt: skip
    rows = list(csv.DictReader(out.open()))
    assert {"track", "score"} <= set(rows[0])
    frames = {int(r["frame"]) for r in rows}
    assert frames == set(range(12))
    tracks = {int(r["track"]) for r in rows if r["track"] not in ("", "-1")}
    assert tracks and tracks <= {0, 1}
    capture = cv2.VideoCapture(str(labeled))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    capture.release()


@pytest.mark.parametrize("suffix", [".onnx", ".tflite"])
def test_a_top_down_export_is_two_checked_networks_and_their_pipeline(trained, pairs, tmp_path,
                                                                      suffix):  # fmt: skip
    """The exported finder and pose model, run by their own runtime and joined as the JSON
    file says, find the app's objects at the app's keypoints."""
    import json

    from kpstudio.ml.export import export_model
    from kpstudio.ml.topdown import TopDownRunner

    if suffix == ".onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("tf2onnx")
    _, data = pairs
    images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in data.paths[:4]]
    out = tmp_path / f"pairs{suffix}"
    result = export_model(trained.model_path, out, sample_images=images)
    assert result.max_px_diff <= 0.5 and result.checked_on == 4
    assert [p.name for p in result.also] == [f"pairs.finder{suffix}", "pairs.topdown.json"]
    pipeline = json.loads((tmp_path / "pairs.topdown.json").read_text())
    assert pipeline["pose"] == out.name and pipeline["finder"] == f"pairs.finder{suffix}"
    assert pipeline["keypoints"] == list(NAMES) and len(pipeline["steps"]) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [out.name, pipeline["finder"], "pairs.topdown.json"])  # no scratch left behind

    def runtime(path):
        if suffix == ".onnx":
            import onnxruntime

            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            return lambda b: session.run(None, {session.get_inputs()[0].name: np.asarray(b)})[0]
        import tensorflow as tf

        def run(b):
            interpreter = tf.lite.Interpreter(model_path=str(path))
            source = interpreter.get_input_details()[0]
            interpreter.resize_tensor_input(source["index"], np.shape(b))
            interpreter.allocate_tensors()
            interpreter.set_tensor(source["index"], np.asarray(b, np.float32))
            interpreter.invoke()
            return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

        return run

    p = pipeline
    exported = TopDownRunner(runtime(tmp_path / p["finder"]), runtime(tmp_path / p["pose"]),
                             p["frame_size"], p["finder_size"], p["crop_size"], p["max_objects"],
                             p["min_separation_px"], p["peak_threshold"])  # fmt: skip
    app = Predictor.from_file(trained.model_path)
    canvases = np.stack([app.letterbox(image)[0] for image in images])
    for mine, theirs in zip(app.runner.run(canvases), exported.run(canvases)):
        assert len(mine) == len(theirs)
        for a, b in zip(mine, theirs):
            np.testing.assert_allclose(a.xy, b.xy, atol=0.05)


def test_a_failed_top_down_export_leaves_no_file(trained, tmp_path, monkeypatch):
    from kpstudio.ml import export

    def broken(model, path):
        raise RuntimeError("converter crashed")

    monkeypatch.setitem(export._WRITERS, "keras", broken)
    with pytest.raises(export.ExportError, match="converter failed on the pose model"):
        export.export_model(trained.model_path, tmp_path / "m.keras")
    assert list(tmp_path.iterdir()) == []
