"""`kpstudio predict` on videos and `kpstudio extract-frames`, end to end on a tiny synthetic
video (a dot moving across 40 frames) and a tiny model file."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import REPO, TINY_PARAMS, tiny_model

from kpstudio.cli import main
from kpstudio.core.skeleton import Skeleton

FRAMES, W, H, FPS = 40, 96, 64, 20.0
SKELETON = Skeleton.create(["head", "body", "tail"], edges=[("head", "body"), ("body", "tail")])


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "dot.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot write MJPG video")
    for i in range(FRAMES):
        frame = np.full((H, W, 3), 30, np.uint8)
        cv2.circle(frame, (10 + 2 * i, 32), 5, (255, 255, 255), -1)
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from kpstudio.ml.model_file import save_model_file

    path = tmp_path_factory.mktemp("model") / "tiny.kpmodel"
    save_model_file(path, tiny_model(), arch="default", params=TINY_PARAMS, input_size=64,
                    skeleton=SKELETON)  # fmt: skip
    return path


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def frame_count(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def test_csv_and_labeled_video_cover_every_frame(video, model_file, tmp_path):
    out, labeled = tmp_path / "dot.csv", tmp_path / "dot_labeled.mp4"
    code = main(["predict", str(model_file), str(video), "-o", str(out), "--labeled-video",
                 str(labeled), "--batch-size", "16", "--smooth"])  # fmt: skip
    assert code == 0
    table = read_csv(out)
    assert table[0][:4] == ["frame", "time", "instance", "head_x"]
    assert "head_x_smooth" in table[0]
    assert [int(r[0]) for r in table[1:]] == list(range(FRAMES))
    assert float(table[11][1]) == pytest.approx(10 / FPS)
    assert frame_count(labeled) == FRAMES
    cap = cv2.VideoCapture(str(labeled))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS)
    size = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    assert size == (W, H)
    cap.release()


def test_the_runtimes_agree_and_match_the_image_predictor(video, model_file, tmp_path):
    from kpstudio.ml.predictor import Predictor

    results = {}
    for runtime in ("tensorflow", "auto"):
        out = tmp_path / f"{runtime}.json"
        assert main(["predict", str(model_file), str(video), "-o", str(out),
                     "--runtime", runtime, "--batch-size", "7"]) == 0  # fmt: skip
        data = json.loads(out.read_text())
        assert data["complete"] and len(data["frames"]) == FRAMES
        results[runtime] = np.array([[[p["x"], p["y"]] for p in f["instances"][0]["keypoints"]
                                      .values()] for f in data["frames"]])  # fmt: skip
    np.testing.assert_allclose(results["auto"], results["tensorflow"], atol=0.01)
    # The video path letterboxes like the image path (up to a tighter canvas and rounding).
    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    cap.release()
    single = Predictor.from_file(model_file).predict_array(frame[:, :, ::-1].copy())
    assert np.max(np.abs(single.xy - results["tensorflow"][0])) < 2.0


def test_dlc_format_reads_as_deeplabcut_output(video, model_file, tmp_path):
    out = tmp_path / "dot.csv"
    assert main(["predict", str(model_file), str(video), "-o", str(out), "--format", "dlc"]) == 0
    table = read_csv(out)
    assert [r[0] for r in table[:3]] == ["scorer", "bodyparts", "coords"]
    assert table[1][1:4] == ["head"] * 3 and table[2][1:4] == ["x", "y", "likelihood"]
    assert len(table) == 3 + FRAMES
    assert all(len(r) == 1 + 3 * 3 for r in table)


def test_interrupt_leaves_a_valid_partial_file_and_resume_completes_it(
    video, model_file, tmp_path, monkeypatch
):
    import kpstudio.ml.video_predict as vp

    whole = tmp_path / "whole.csv"
    args = ["--batch-size", "4", "--smooth", "--runtime", "tensorflow"]
    monkeypatch.setattr(vp, "SMOOTH_CHUNK", 8)  # so rows leave the smoother before the cut
    assert main(["predict", str(model_file), str(video), "-o", str(whole), *args]) == 0

    out = tmp_path / "cut.csv"
    real_emit, calls = vp._emit, []

    def interrupted(*a):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real_emit(*a)

    monkeypatch.setattr(vp, "_emit", interrupted)
    assert main(["predict", str(model_file), str(video), "-o", str(out), *args]) == 130
    monkeypatch.setattr(vp, "_emit", real_emit)
    partial = read_csv(out)
    side = json.loads((tmp_path / "cut.csv.progress.json").read_text())
    assert len(partial) - 1 == side["frames_done"] and 0 < side["frames_done"] < FRAMES
    assert all(len(r) == len(partial[0]) for r in partial)
    # Without --resume the partial file is not overwritten.
    assert main(["predict", str(model_file), str(video), "-o", str(out), *args]) == 1
    assert main(["predict", str(model_file), str(video), "-o", str(out), *args, "--resume"]) == 0
    done = read_csv(out)
    assert [int(r[0]) for r in done[1:]] == list(range(FRAMES))
    assert not (tmp_path / "cut.csv.progress.json").exists()
    np.testing.assert_allclose(np.array(done[1:], float), np.array(read_csv(whole)[1:], float),
                               atol=2e-3)  # fmt: skip


def test_an_unreadable_video_is_a_clear_error(model_file, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    assert main(["predict", str(model_file), str(bad), "-o", str(tmp_path / "x.csv")]) == 1
    err = capsys.readouterr().err
    assert "broken.mp4" in err and "could not be opened as a video" in err
    assert not (tmp_path / "x.csv").exists()


def test_several_videos_go_to_a_folder(video, model_file, tmp_path):
    other = tmp_path / "other.avi"
    other.write_bytes(video.read_bytes())
    out = tmp_path / "preds"
    assert main(["predict", str(model_file), str(video), str(other), "-o", str(out)]) == 0
    assert len(read_csv(out / "dot.csv")) == len(read_csv(out / "other.csv")) == FRAMES + 1


@pytest.fixture
def project(tmp_path, video):
    """A project with a few labeled frames of the video and a run whose model is the tiny one."""
    from kpstudio.core.image_reader import scan_image
    from kpstudio.core.project import Project
    from kpstudio.core.runs import record_run
    from kpstudio.core.video_frames import extract_frames
    from kpstudio.ml.model_file import save_model_file

    folder = tmp_path / "proj"
    with Project.create(folder, SKELETON) as p:
        files = extract_frames(video, folder / "labeled", 4, "even")
        ids = p.add_images((i.path, i.width, i.height, i.sha256) for i in map(scan_image, files))
        for image_id, f in zip(ids, files):
            x = 10 + 2 * int(f.stem.split("_")[-1]) + 0.5
            p.set_labels(image_id, [("head", x - 4, 32.5, 2), ("body", x, 32.5, 2),
                                    ("tail", x + 4, 32.5, 2)])  # fmt: skip
        model = save_model_file(folder / "runs" / "r1" / "model.kpmodel", tiny_model(),
                                arch="default", params=TINY_PARAMS, input_size=64,
                                skeleton=SKELETON)  # fmt: skip
        record_run(p, "r1", "default", "finished", {}, model_path=model)
    return folder


def extract_outliers(project, video, count: int) -> list:
    """Run `extract-frames --outliers COUNT`; the images it added, as (record, frame index)."""
    from kpstudio.core.project import Project

    with Project.open(project, readonly=True) as p:
        before = {r.id for r in p.images()}
    assert main(["extract-frames", str(project), str(video), "--outliers", str(count)]) == 0
    with Project.open(project, readonly=True) as p:
        return [(r, int(r.path.split("_")[-1].split(".")[0]))
                for r in p.images() if r.id not in before]  # fmt: skip


def test_extract_outliers_adds_frames_spread_over_time_with_predictions(project, video):
    from kpstudio.core.predictions import load_prediction
    from kpstudio.core.project import Project

    added = extract_outliers(project, video, 5)
    assert len(added) == 5
    indices = sorted(index for _, index in added)
    assert np.min(np.diff(indices)) >= FRAMES // (3 * 5)
    with Project.open(project, readonly=True) as p:
        for record, _ in added:
            assert record.status == "predicted"
            assert (project / record.path).is_file()
            xy, conf = load_prediction(p, record.id, "r1")
            assert xy.shape == (3, 2) and np.isfinite(xy).all() and np.isfinite(conf).all()
    # Asking again picks other frames, never the ones already added.
    again = extract_outliers(project, video, 5)
    assert len(again) == 5 and not {index for _, index in again} & set(indices)


def test_extract_count_still_samples_evenly(project, video):
    from kpstudio.core.project import Project

    assert main(["extract-frames", str(project), str(video), "--count", "3", "--method",
                 "even"]) == 0  # fmt: skip
    with Project.open(project, readonly=True) as p:
        assert sum(1 for r in p.images() if r.path.startswith("frames/")) == 3


def test_help_stays_free_of_tensorflow():
    code = ("import sys; from kpstudio.cli import build_parser; build_parser(); "
            "assert 'tensorflow' not in sys.modules and 'cv2' not in sys.modules")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0


def test_video_options_on_images_are_an_error(model_file, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.zeros((H, W, 3), np.uint8))
    out = tmp_path / "x.csv"
    assert main(["predict", str(model_file), str(images), "-o", str(out), "--smooth"]) == 1
    assert "--smooth: only for videos" in capsys.readouterr().err
    assert main(["predict", str(model_file), str(images), "-o", str(out)]) == 0
    assert out.exists()


class TwoDots:
    """Stands in for a multi-instance (top-down) model: finds the dot (its x tells the frame)
    and a second animal mirrored across the frame, listed in alternating order."""

    manifest = {"top_down": {}, "input_size": 64}
    skeleton = SKELETON

    def predict_instances(self, images):
        from kpstudio.core.prediction_files import Prediction

        out = []
        for image in images:
            ys, xs = np.nonzero(image[..., 0] > 128)
            x, y = xs.mean() + 0.5, ys.mean() + 0.5
            dot = np.array([[x + 4, y], [x, y], [x - 4, y]])
            other = np.array([[W - x - 4, y - 20], [W - x, y - 20], [W - x + 4, y - 20]])
            found = [Prediction(None, p, np.full(3, 0.9), instance=i, score=0.9)
                     for i, p in enumerate([dot, other])]  # fmt: skip
            out.append(found if round(x) % 4 else found[::-1])
        return out


def test_several_animals_get_track_ids_and_resume_with_them(
    video, model_file, tmp_path, monkeypatch, capsys
):
    import kpstudio.ml.predictor as predictor_module
    import kpstudio.ml.video_instances as vi

    fake = classmethod(lambda cls, path: TwoDots())
    monkeypatch.setattr(predictor_module.Predictor, "from_file", fake)
    whole, cut = tmp_path / "whole.csv", tmp_path / "cut.csv"
    args = ["--batch-size", "4", "--format", "dlc", "--animals", "2"]
    assert main(["predict", str(model_file), str(video), "-o", str(whole), *args]) == 0
    table = read_csv(whole)
    assert [r[0] for r in table[:4]] == ["scorer", "individuals", "bodyparts", "coords"]
    assert len(table) == 4 + FRAMES
    head_x = np.array([[float(r[1]), float(r[10])] for r in table[4:]])
    # The dot keeps its block whatever order the model lists the instances in.
    assert np.all(np.diff(head_x[:, 0]) > 0) or np.all(np.diff(head_x[:, 1]) > 0)
    real, calls = vi._write, []

    def interrupted(*a):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setattr(vi, "_write", interrupted)
    assert main(["predict", str(model_file), str(video), "-o", str(cut), *args]) == 130
    monkeypatch.setattr(vi, "_write", real)
    # The number of animals is part of what a partial file was started with.
    other = ["--batch-size", "4", "--format", "dlc", "--animals", "3", "--resume"]
    assert main(["predict", str(model_file), str(video), "-o", str(cut), *other]) == 1
    assert "animals" in capsys.readouterr().err
    assert main(["predict", str(model_file), str(video), "-o", str(cut), *args, "--resume"]) == 0
    assert cut.read_bytes() == whole.read_bytes()



def test_extract_outliers_with_several_animals_stores_every_animal_found(
    project, video, monkeypatch
):
    import kpstudio.ml.predictor as predictor_module
    from kpstudio.core.predictions import load_objects
    from kpstudio.core.project import Project

    monkeypatch.setattr(predictor_module.Predictor, "from_file",
                        classmethod(lambda cls, path: TwoDots()))  # fmt: skip
    added = extract_outliers(project, video, 3)
    assert len(added) == 3
    with Project.open(project, readonly=True) as p:
        for record, index in added:
            assert record.status == "predicted"
            objects = load_objects(p, record.id, "r1")
            assert len(objects) == 2  # the dot and the other animal, each its own instance
            dot_x = 10 + 2 * index + 0.5
            assert any(abs(xy[1, 0] - dot_x) < 1.5 for xy, _ in objects)

def test_animals_is_refused_for_a_single_instance_model(video, model_file, tmp_path, capsys):
    out = tmp_path / "x.csv"
    assert main(["predict", str(model_file), str(video), "-o", str(out), "--animals", "2"]) == 1
    assert "finds one animal per frame" in capsys.readouterr().err
