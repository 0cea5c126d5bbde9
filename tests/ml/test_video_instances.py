"""Several animals on a video, with a stand-in for the top-down model: every instance written
with a track id, ids that follow the animals, smoothing per track, and a resumed run that goes
on with the same ids."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from synthetic_animals import K, count_swaps, make_clip

from kpstudio.core.instance_tracking import link_tracks
from kpstudio.core.labeled_video import LabeledVideoWriter
from kpstudio.core.prediction_files import Prediction
from kpstudio.core.skeleton import Skeleton
from kpstudio.core.track_resume import read_last_frames
from kpstudio.core.tracks import SmoothingParams, smooth_track
from kpstudio.core.video_frames import probe_video
from kpstudio.core.video_output import TrackHeader, open_writer, read_progress
from kpstudio.ml.video_instances import is_multi_instance, resume_frames
from kpstudio.ml.video_predict import predict_video

FRAMES, W, H, FPS = 60, 64, 48, 15.0
CLIP = make_clip(3, FRAMES, seed=2, body_length=10.0, spread=0.6, false_positive=0.1)


def _level(i: int) -> int:
    return 10 + 4 * i  # the frame's index, written into its pixels (MJPG keeps a flat block)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("v") / "animals.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot write MJPG video")
    for i in range(FRAMES):
        writer.write(np.full((H, W, 3), _level(i), np.uint8))
    writer.release()
    return probe_video(path)


class FakeTopDown:
    """Duck-typed like the lead's multi-instance Predictor: manifest with "top_down", a
    skeleton, predict_instances(RGB images) → a list of Predictions per image. It reads the
    frame index from the pixels and answers with the synthetic clip's instances of that frame."""

    def __init__(self):
        self.manifest = {"top_down": {"crop_size": 64}, "input_size": 64}
        self.skeleton = Skeleton.create([f"p{k}" for k in range(K)])
        self.calls: list[int] = []

    def predict_instances(self, images):
        self.calls.append(len(images))
        out = []
        for image in images:
            assert image.ndim == 3 and image.dtype == np.uint8
            frame = int(round((float(image.mean()) - 10) / 4))
            out.append([
                Prediction(None, xy, conf, instance=i, score=score)
                for i, (xy, conf, score) in enumerate(CLIP.frames[frame])
            ])  # fmt: skip
        return out


class Rows:
    """A sink keeping every row."""

    def __init__(self):
        self.frame, self.track, self.xy, self.conf, self.smooth = [], [], [], [], []
        self.upto = 0

    def write(self, frames, instances, xy, conf, smooth, tracks=None, upto=None, scores=None):
        assert upto is not None and (not len(frames) or frames.min() >= self.upto)
        self.upto = upto
        self.frame += list(frames)
        self.track += list(tracks)
        self.xy += list(xy)
        self.conf += list(conf)
        self.smooth += list(smooth) if smooth is not None else [None] * len(frames)

    def checkpoint(self):
        pass


def per_frame(values, frames):
    out = [[] for _ in range(FRAMES)]
    for v, f in zip(values, frames):
        out[f].append(v)
    return out


def test_a_multi_instance_model_is_told_by_its_manifest():
    assert is_multi_instance(FakeTopDown())
    single = SimpleNamespace(manifest={"input_size": 64}, predict_instances=lambda images: [])
    assert not is_multi_instance(single)  # no "top_down": the single-instance fast path


def test_every_instance_is_written_with_the_tracker_ids(video):
    model = FakeTopDown()
    sink = Rows()
    times = predict_video(model, video, sink, batch_size=8)
    assert times.frames == FRAMES and sink.upto == FRAMES
    assert model.calls == [8] * 7 + [4]  # whole frames, a batch at a time
    assert len(sink.frame) == sum(len(f) for f in CLIP.frames)
    want = link_tracks(CLIP.frames, K, fps=FPS)
    got = per_frame(sink.track, sink.frame)
    assert got == want
    xy = per_frame(sink.xy, sink.frame)
    for f in (0, 31, FRAMES - 1):
        for p, (q, _, _) in zip(xy[f], CLIP.frames[f]):
            np.testing.assert_array_equal(p, q)
    assert count_swaps(CLIP.truth, got) == 0


def test_smoothing_runs_per_track_and_equals_smoothing_each_whole_track(video):
    params = SmoothingParams(window=5, max_gap=3, context=6)
    sink = Rows()
    predict_video(FakeTopDown(), video, sink, smoothing=params, batch_size=4)
    assert sorted(set(sink.frame)) == [f for f in range(FRAMES) if CLIP.frames[f]]
    frame, track = np.array(sink.frame), np.array(sink.track)
    for t in set(sink.track):
        mine = np.flatnonzero(track == t)
        first = frame[mine].min()
        xy = np.full((FRAMES - first, K, 2), np.nan)
        conf = np.full((FRAMES - first, K), np.nan)
        for r in mine:
            xy[frame[r] - first], conf[frame[r] - first] = sink.xy[r], sink.conf[r]
        want = smooth_track(xy, conf, params)
        for r in mine:
            np.testing.assert_allclose(sink.smooth[r], want[frame[r] - first], atol=1e-9)


def test_the_labeled_video_has_every_frame_with_all_animals(video, tmp_path):
    drawn = LabeledVideoWriter(tmp_path / "l.avi", FakeTopDown().skeleton, FPS, W, H)
    predict_video(FakeTopDown(), video, Rows(), labeled=drawn, batch_size=8)
    assert drawn.frames == FRAMES


def header(smoothed: bool, animals: int) -> TrackHeader:
    names = tuple(f"p{k}" for k in range(K))
    return TrackHeader("animals.avi", "m.kpmodel", names, FPS, FRAMES, W, H, smoothed,
                       tracked=True, animals=animals)  # fmt: skip


def run_to_file(video, out, fmt, smoothing, animals, stop_at=None):
    """As `kpstudio predict` does it, optionally stopped (Ctrl+C) after frame `stop_at`, then
    resumed from the partial file."""
    resume = read_progress(out)
    head = header(smoothing is not None, animals)
    writer = open_writer(out, fmt, head, resume, {"video": "v"})
    earlier, next_track = None, 0
    if resume is not None:
        earlier = read_last_frames(out, fmt, head, resume, resume_frames(FPS, smoothing))
        next_track = resume["next_track"]

    def progress(done, total):
        if stop_at is not None and done >= stop_at:
            raise KeyboardInterrupt

    try:
        predict_video(FakeTopDown(), video, writer, start=writer.frames_done,
                      smoothing=smoothing, batch_size=4, progress=progress, animals=animals,
                      earlier=earlier, next_track=next_track)  # fmt: skip
    except KeyboardInterrupt:
        writer.close(complete=False)
        return
    writer.close(complete=True)


def read_rows(path):
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    return table[0], table[1:]


@pytest.mark.parametrize("smoothed", [False, True])
@pytest.mark.parametrize("animals", [None, 3])
def test_a_resumed_run_goes_on_with_the_same_track_ids(video, tmp_path, smoothed, animals):
    smoothing = SmoothingParams(window=5, max_gap=3, context=6) if smoothed else None
    whole, cut = tmp_path / "whole.csv", tmp_path / "cut.csv"
    run_to_file(video, whole, "csv", smoothing, animals)
    run_to_file(video, cut, "csv", smoothing, animals, stop_at=40)  # smoothing: 26 written
    done = read_progress(cut)["frames_done"]
    assert 0 < done < FRAMES
    run_to_file(video, cut, "csv", smoothing, animals)
    assert read_progress(cut) is None
    head, want = read_rows(whole)
    _, got = read_rows(cut)
    assert [r[:4] for r in got] == [r[:4] for r in want]  # frame, time, instance, track
    raw = [i for i, name in enumerate(head) if not name.endswith("_smooth")][4:]
    assert [[r[i] for i in raw] for r in got] == [[r[i] for i in raw] for r in want]
    smooth = [i for i, name in enumerate(head) if name.endswith("_smooth")]
    for a, b in zip(got, want):  # read back at 3 decimals: at most a rounding apart
        for i in smooth:
            assert (a[i] == "") == (b[i] == "")
            if a[i]:
                assert float(a[i]) == pytest.approx(float(b[i]), abs=2e-3)


def test_a_dlc_file_of_several_animals_resumes_too(video, tmp_path):
    whole, cut = tmp_path / "whole.csv", tmp_path / "cut.csv"
    run_to_file(video, whole, "dlc", None, 3)
    run_to_file(video, cut, "dlc", None, 3, stop_at=30)
    run_to_file(video, cut, "dlc", None, 3)
    assert cut.read_bytes() == whole.read_bytes()
