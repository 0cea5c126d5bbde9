"""Streaming prediction files: one row per frame and instance, valid when cut short, resumable
from their sidecar, and DeepLabCut's three header rows readable without pandas."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from kpstudio.core.video_output import (
    OutputError,
    TrackHeader,
    format_for,
    open_writer,
    progress_path,
    read_progress,
)

NAMES = ("snout", "tail, base")  # a comma in a name must not shift the columns


def header(smoothed=False) -> TrackHeader:
    return TrackHeader("clip.mp4", "model.kpmodel", NAMES, 25.0, 10, 64, 48, smoothed)


def rows(first, n, k=2):
    frames = np.arange(first, first + n)
    xy = np.stack([frames + 0.25, frames * 2.0], axis=-1)[:, None, :].repeat(k, axis=1)
    conf = np.full((n, k), 0.875)
    return frames, np.zeros(n, np.int64), xy, conf


def write_all(out, fmt, smoothed=False, stop_after=None, resume=None):
    writer = open_writer(out, fmt, header(smoothed), resume, {"video": "clip"})
    first = writer.frames_done
    for start in range(first, 10, 4):
        frames, inst, xy, conf = rows(start, min(4, 10 - start))
        smooth = xy + 1.0 if smoothed else None
        if stop_after is not None and start >= stop_after:
            writer.close(complete=False)
            return writer
        writer.write(frames, inst, xy, conf, smooth)
        writer.checkpoint()
    writer.close(complete=True)
    return writer


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_csv_has_one_row_per_frame_with_index_and_time(tmp_path):
    out = tmp_path / "p.csv"
    write_all(out, "csv", smoothed=True)
    table = read_csv(out)
    assert table[0][:6] == ["frame", "time", "instance", "snout_x", "snout_y", "snout_confidence"]
    assert "tail, base_x_smooth" in table[0]
    assert len(table) == 11 and all(len(r) == len(table[0]) for r in table)
    assert [int(r[0]) for r in table[1:]] == list(range(10))
    assert float(table[4][1]) == pytest.approx(3 / 25.0)
    assert float(table[4][3]) == pytest.approx(3.25) and table[4][2] == "0"
    assert not progress_path(out).exists()  # complete: no sidecar


def test_dlc_csv_has_three_header_rows_and_pixel_index_coordinates(tmp_path):
    out = tmp_path / "p.csv"
    write_all(out, "dlc", smoothed=True)
    table = read_csv(out)
    assert [r[0] for r in table[:3]] == ["scorer", "bodyparts", "coords"]
    assert set(table[0][1:]) == {"kpstudio_model"}
    assert table[1][1:] == ["snout"] * 3 + ["tail, base"] * 3
    assert table[2][1:] == ["x", "y", "likelihood"] * 2
    assert len(table) == 13 and table[3][0] == "0"
    assert float(table[5][1]) == pytest.approx(2.25 - 0.5)  # DeepLabCut: pixel centres
    filtered = read_csv(tmp_path / "p_filtered.csv")
    assert float(filtered[5][1]) == pytest.approx(3.25 - 0.5)


def test_json_lists_frames_and_instances(tmp_path):
    out = tmp_path / "p.json"
    write_all(out, "json")
    data = json.loads(out.read_text())
    assert data["complete"] is True and data["frames_done"] == 10
    assert data["keypoints"] == list(NAMES) and data["fps"] == 25.0
    assert [f["frame"] for f in data["frames"]] == list(range(10))
    point = data["frames"][3]["instances"][0]["keypoints"]["tail, base"]
    assert point == {"x": 3.25, "y": 6.0, "confidence": 0.875}


@pytest.mark.parametrize("fmt,name", [("csv", "p.csv"), ("json", "p.json"), ("dlc", "p.csv")])
def test_a_stopped_file_is_valid_and_resumes_without_gaps_or_repeats(tmp_path, fmt, name):
    whole, cut = tmp_path / "whole" / name, tmp_path / "cut" / name
    write_all(whole, fmt, smoothed=True)
    write_all(cut, fmt, smoothed=True, stop_after=4)
    state = read_progress(cut)
    assert state["frames_done"] == 4 and state["video"] == "clip"
    if fmt == "json":
        partial = json.loads(cut.read_text())
        assert partial["complete"] is False and partial["frames_done"] == 4
        assert len(partial["frames"]) == 4
    else:
        assert len(read_csv(cut)) == (3 if fmt == "dlc" else 1) + 4
    write_all(cut, fmt, smoothed=True, resume=state)
    assert cut.read_bytes() == whole.read_bytes()
    assert read_progress(cut) is None


def test_a_write_cut_between_files_goes_back_to_the_last_whole_frame(tmp_path):
    out = tmp_path / "p.csv"
    writer = open_writer(out, "dlc", header(True), None, {})
    frames, inst, xy, conf = rows(0, 4)
    writer.write(frames, inst, xy, conf, xy)
    writer.streams[0].write(b"5,1.0,")  # Ctrl+C came in the middle of the next batch
    writer.close(complete=False)
    assert len(read_csv(out)) == 3 + 4
    assert read_progress(out)["offsets"]["p.csv"] == out.stat().st_size


def test_resume_refuses_a_file_of_another_header(tmp_path):
    out = tmp_path / "p.csv"
    write_all(out, "csv", stop_after=4)
    state = read_progress(out)
    with pytest.raises(OutputError, match="header"):
        open_writer(out, "csv", header(smoothed=True), state, {})


def test_format_comes_from_the_suffix_or_the_option(tmp_path):
    assert format_for(tmp_path / "a.csv", None) == "csv"
    assert format_for(tmp_path / "a.JSON", None) == "json"
    assert format_for(tmp_path / "a.csv", "dlc") == "dlc"
    with pytest.raises(OutputError, match="must end in .csv"):
        format_for(tmp_path / "a.json", "dlc")
    with pytest.raises(OutputError, match=r"\.csv or \.json"):
        format_for(tmp_path / "a.txt", None)


@pytest.mark.parametrize("fmt", ["csv", "dlc"])
def test_names_a_spreadsheet_would_run_are_escaped(tmp_path, fmt):
    out = tmp_path / "p.csv"
    named = TrackHeader("clip.mp4", "model.kpmodel", ("=HYPERLINK(1)", "@cmd"), 25.0, 2, 64, 48,
                        False)  # fmt: skip
    writer = open_writer(out, fmt, named, None, {"video": "clip"})
    frames, inst, xy, conf = rows(0, 2)
    writer.write(frames, inst, xy, conf, None)
    writer.close(complete=True)
    cells = [cell for row in read_csv(out) for cell in row]
    assert not any(c.startswith(("=", "@")) for c in cells)
    assert any(c.startswith("'=HYPERLINK(1)") for c in cells)
    assert any(c.startswith("'@cmd") for c in cells)


# --- several animals: track ids -------------------------------------------------------------


def tracked_header(smoothed=False, animals=3) -> TrackHeader:
    return TrackHeader("clip.mp4", "model.kpmodel", NAMES, 25.0, 10, 64, 48, smoothed,
                       tracked=True, animals=animals)  # fmt: skip


def tracked_rows(first, end):
    """Frames [first, end): two animals, track 1 absent on odd frames, a spare instance (-1)
    on frame 4, nothing at all on frame 6."""
    frames, inst, tracks = [], [], []
    for f in range(first, end):
        if f == 6:
            continue
        present = [0] if f % 2 else [0, 1]
        present += [-1] if f == 4 else []
        for i, t in enumerate(present):
            frames.append(f)
            inst.append(i)
            tracks.append(t)
    frames = np.array(frames, np.int64)
    tracks = np.array(tracks, np.int64)
    xy = np.stack([frames + 0.25 + 100 * tracks, frames * 2.0], -1)[:, None].repeat(2, 1)
    conf = np.full((len(frames), 2), 0.875)
    return frames, np.array(inst, np.int64), xy, conf, tracks


def write_tracked(out, fmt, smoothed=False, stop_after=None, resume=None, animals=3):
    writer = open_writer(out, fmt, tracked_header(smoothed, animals), resume, {"video": "clip"})
    for start in range(writer.frames_done, 10, 4):
        end = min(start + 4, 10)
        if stop_after is not None and start >= stop_after:
            writer.close(complete=False)
            return writer
        frames, inst, xy, conf, tracks = tracked_rows(start, end)
        smooth = xy + 1.0 if smoothed else None
        writer.write(
            frames, inst, xy, conf, smooth, tracks=tracks, upto=end, scores=0.5 + 0 * tracks
        )
        writer.checkpoint()
    writer.close(complete=True)
    return writer


def test_a_tracked_csv_has_a_track_column_and_a_row_per_instance(tmp_path):
    out = tmp_path / "p.csv"
    write_tracked(out, "csv")
    table = read_csv(out)
    assert table[0][:6] == ["frame", "time", "instance", "track", "score", "snout_x"]
    body = [(int(r[0]), int(r[3])) for r in table[1:]]
    assert (4, -1) in body and (3, 0) in body and (3, 1) not in body
    assert 6 not in {f for f, _ in body}  # no animal, no row
    assert float(table[1 + body.index((2, 1))][5]) == pytest.approx(102.25)
    assert {r[4] for r in table[1:]} == {"0.5000"}


def test_a_tracked_json_lists_every_frame_with_track_ids(tmp_path):
    out = tmp_path / "p.json"
    write_tracked(out, "json")
    data = json.loads(out.read_text())
    assert data["tracked"] is True and data["animals"] == 3
    assert [f["frame"] for f in data["frames"]] == list(range(10))
    assert data["frames"][6]["instances"] == []
    assert [i["track"] for i in data["frames"][4]["instances"]] == [0, 1, -1]
    assert data["frames"][4]["instances"][0]["score"] == 0.5
    # A single-instance file's head is as it was before tracking.
    write_all(tmp_path / "s.json", "json")
    assert "tracked" not in json.loads((tmp_path / "s.json").read_text())


def test_a_tracked_dlc_csv_has_a_block_per_animal(tmp_path):
    out = tmp_path / "p.csv"
    write_tracked(out, "dlc", animals=2)
    table = read_csv(out)
    assert [r[0] for r in table[:4]] == ["scorer", "individuals", "bodyparts", "coords"]
    assert table[1][1:] == ["track0"] * 6 + ["track1"] * 6
    assert table[2][1:] == (["snout"] * 3 + ["tail, base"] * 3) * 2
    rows = table[4:]
    assert [int(r[0]) for r in rows] == list(range(10))  # one row per frame, frame 6 too
    assert float(rows[2][7]) == pytest.approx(102.25 - 0.5)  # track 1's snout x, frame 2
    assert rows[3][7:] == [""] * 6  # track 1 absent on frame 3
    assert set(rows[6][1:]) == {""}
    assert all(len(r) == 13 for r in rows)  # the spare instance (-1) has no column


def test_a_tracked_dlc_csv_needs_the_number_of_animals(tmp_path):
    with pytest.raises(OutputError, match="--animals N"):
        open_writer(tmp_path / "p.csv", "dlc", tracked_header(animals=0), None, {})


@pytest.mark.parametrize("fmt,name", [("csv", "p.csv"), ("json", "p.json"), ("dlc", "p.csv")])
def test_a_stopped_tracked_file_resumes_without_gaps_or_repeats(tmp_path, fmt, name):
    whole, cut = tmp_path / "whole" / name, tmp_path / "cut" / name
    write_tracked(whole, fmt, smoothed=True)
    write_tracked(cut, fmt, smoothed=True, stop_after=8)
    state = read_progress(cut)
    assert state["frames_done"] == 8 and state["next_track"] == 2
    write_tracked(cut, fmt, smoothed=True, resume=state)
    assert cut.read_bytes() == whole.read_bytes()
