"""Frames from videos: probing, even and diverse picking, PNG extraction, cancel, bad files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED  # noqa: E402

from kpstudio.core import video_frames as vf
from kpstudio.core.image_reader import read_image
from kpstudio.core.video_frames import (
    VideoError,
    VideoInfo,
    count_decodable_frames,
    extract_frames,
    pick_frames,
    probe_video,
)

REAL_VIDEO = SHARED / "peer-files/sleap/tests/data/json_format_v1/centered_pair_low_quality.mp4"
W, H = 64, 48


def scene(kind: str) -> np.ndarray:
    """A BGR frame; the three kinds differ in colour and in pattern."""
    img = np.zeros((H, W, 3), np.uint8)
    if kind == "red":
        img[:] = (0, 0, 230)
    elif kind == "checks":
        img[:] = 40
        img[(np.indices((H, W)) // 8).sum(0) % 2 == 1] = 220
    else:
        img[:] = (0, 200, 0)
        img[:, 24:40] = 255
    return img


def write_video(path: Path, runs: list[tuple[str, int]]) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (W, H))
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot write MJPG video")
    for kind, n in runs:
        for _ in range(n):
            writer.write(scene(kind))
    writer.release()
    return path


# Frames 0-59 red, 60-74 checks, 75-89 green: a long scene and two short ones.
RUNS = [("red", 60), ("checks", 15), ("green", 15)]


def scene_of(index: int) -> str:
    return "red" if index < 60 else "checks" if index < 75 else "green"


@pytest.fixture()
def video(tmp_path) -> Path:
    return write_video(tmp_path / "clip.avi", RUNS)


@pytest.fixture(scope="session")
def real_video() -> Path:
    if not REAL_VIDEO.is_file():
        pytest.skip("../shared/peer-files (the SLEAP sample video) is not present")
    return REAL_VIDEO


def test_probe_reports_size_and_length(video):
    info = probe_video(video)
    assert info == VideoInfo(video, 90, info.fps, W, H)
    assert info.fps == pytest.approx(25.0)
    assert count_decodable_frames(video) == 90


def test_even_spreads_over_the_video(video):
    picked = pick_frames(video, 3)
    assert picked == sorted(picked) and len(picked) == 3
    assert [scene_of(i) for i in picked] == ["red", "red", "green"]  # misses the checks
    assert pick_frames(video, 200) == list(range(90))


def test_diverse_picks_one_frame_from_each_scene(video, tmp_path):
    picked = pick_frames(video, 3, "diverse")
    assert len(picked) == 3 and picked == sorted(picked)
    assert {scene_of(i) for i in picked} == {"red", "checks", "green"}
    equal = write_video(tmp_path / "equal.avi", [("green", 30), ("red", 30), ("checks", 30)])
    assert [i // 30 for i in pick_frames(equal, 3, "diverse")] == [0, 1, 2]
    assert pick_frames(video, 3, "diverse") == picked  # the same video offers the same frames


def test_diverse_on_a_still_video_still_gives_distinct_frames(tmp_path):
    still = write_video(tmp_path / "still.avi", [("checks", 40)])
    picked = pick_frames(still, 4, "diverse")
    assert len(set(picked)) == 4 and all(0 <= i < 40 for i in picked)


def test_extract_writes_pngs_as_the_user_sees_them(video, tmp_path):
    out = tmp_path / "frames ü" / "sub"  # created, non-ASCII on the way
    seen = []
    paths = extract_frames(video, out, 3, "diverse", progress=lambda d, t: seen.append((d, t)))
    assert paths == sorted(paths) and all(p.parent == out for p in paths)
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in paths]
    for p in paths:
        index = int(p.stem.rsplit("_", 1)[1])
        assert p.name == f"clip_{index:06d}.png"
        rgb = read_image(p)
        assert rgb.shape == (H, W, 3)
        expected = cv2.cvtColor(scene(scene_of(index)), cv2.COLOR_BGR2RGB)
        assert np.abs(rgb.astype(int) - expected).mean() < 12  # MJPG is lossy
    red = read_image(out / f"clip_{[i for i in map(_index, paths) if i < 60][0]:06d}.png")
    assert red[..., 0].mean() > 200 and red[..., 2].mean() < 30  # red stays red, not blue
    done = [d for d, _ in seen]
    assert done == sorted(done) and seen[-1][0] == seen[-1][1]
    assert all(d <= t for d, t in seen)


def _index(p: Path) -> int:
    return int(p.stem.rsplit("_", 1)[1])


@pytest.mark.parametrize(("method", "after"), [("even", 40), ("diverse", 130)])
def test_cancel_leaves_nothing_behind(video, tmp_path, method, after):
    out = tmp_path / "frames"
    out.mkdir()
    (out / "clip_000011.png").write_bytes(b"earlier extraction")
    calls, unfinished = [], []

    def stop() -> bool:
        calls.append(1)
        if len(calls) > after:  # part-way through writing
            unfinished.extend(out.glob(".*.part"))
            return True
        return False

    with pytest.raises(InterruptedError):
        extract_frames(video, out, 10, method, should_stop=stop)
    assert unfinished  # some frames were already written when the user cancelled
    assert [p.name for p in out.iterdir()] == ["clip_000011.png"]
    assert (out / "clip_000011.png").read_bytes() == b"earlier extraction"
    with pytest.raises(InterruptedError):
        extract_frames(video, tmp_path / "new", 10, method, should_stop=lambda: True)
    assert not (tmp_path / "new").exists()


def test_overstated_length_is_caught(video, tmp_path, monkeypatch):
    """A header claiming 150 frames for 90: the frames past the end are found missing and
    the pick is made again among the frames that decode."""
    claimed = dataclasses.replace(probe_video(video), frames=150)
    monkeypatch.setattr(vf, "probe_video", lambda p: claimed)
    paths = extract_frames(video, tmp_path / "out", 4)
    assert len(paths) == 4 and all(_index(p) < 90 for p in paths)
    assert len(list((tmp_path / "out").iterdir())) == 4


def test_seek_and_sequential_reads_agree(video):
    wanted = [0, 7, 59, 60, 88, 89, 95]
    seek = dict(vf._iter_frames(video, wanted, vf._never, sequential=False))
    walk = dict(vf._iter_frames(video, wanted, vf._never, sequential=True))
    assert sorted(seek) == sorted(walk) == wanted[:-1]  # 95 is past the end
    for i in seek:
        assert np.array_equal(seek[i], walk[i])


@pytest.mark.parametrize("bad", ["missing.mp4", "folder", "empty.mp4", "text.avi"])
def test_unreadable_files_get_a_clear_error(tmp_path, bad):
    path = tmp_path / bad
    if bad == "folder":
        path.mkdir()
    elif bad == "empty.mp4":
        path.write_bytes(b"")
    elif bad == "text.avi":
        path.write_text("not a video at all\n" * 50)
    with pytest.raises(VideoError) as err:
        probe_video(path)
    assert str(path) in str(err.value)
    with pytest.raises(VideoError):
        extract_frames(path, tmp_path / "out", 3)
    assert not (tmp_path / "out").exists()


def test_bad_arguments(video):
    with pytest.raises(ValueError, match="method"):
        pick_frames(video, 3, "random")
    with pytest.raises(ValueError, match="at least one"):
        pick_frames(video, 0)


def test_real_mp4(real_video, tmp_path):
    info = probe_video(real_video)
    assert info.frames > 0 and info.width > 0 and info.height > 0
    assert count_decodable_frames(real_video) == info.frames
    picked = pick_frames(real_video, 5, "diverse")
    assert len(set(picked)) == 5 and all(0 <= i < info.frames for i in picked)
    paths = extract_frames(real_video, tmp_path, 3)
    assert [read_image(p).shape for p in paths] == [(info.height, info.width, 3)] * 3
    wanted = [0, 1, 17, info.frames // 2, info.frames - 1]
    seek = dict(vf._iter_frames(real_video, wanted, vf._never, sequential=False))
    walk = dict(vf._iter_frames(real_video, wanted, vf._never, sequential=True))
    assert sorted(seek) == sorted(walk) == wanted
    for i in wanted:
        assert np.array_equal(seek[i], walk[i]), f"frame {i} differs after a seek"
