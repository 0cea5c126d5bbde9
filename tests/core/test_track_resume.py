"""A partial tracked file's last frames read back, in each format, as they were written."""

from __future__ import annotations

import numpy as np
import pytest
from test_video_output import tracked_header, tracked_rows, write_tracked

from kpstudio.core.track_resume import read_last_frames
from kpstudio.core.video_output import OutputError, read_progress


@pytest.mark.parametrize("fmt,name", [("csv", "p.csv"), ("json", "p.json"), ("dlc", "p.csv")])
@pytest.mark.parametrize("smoothed", [False, True])
def test_the_last_frames_come_back_as_written(tmp_path, fmt, name, smoothed):
    out = tmp_path / name
    write_tracked(out, fmt, smoothed=smoothed, stop_after=8, animals=2)
    state = read_progress(out)
    got = read_last_frames(out, fmt, tracked_header(smoothed, animals=2), state, 5)
    frames, _, xy, conf, tracks = tracked_rows(3, 8)
    want = [(int(f), int(t), p, c) for f, t, p, c in zip(frames, tracks, xy, conf) if t >= 0]
    assert [(f, t) for f, t, *_ in got] == [(f, t) for f, t, _, _ in want]
    for (_, _, p, c, score), (_, _, wp, wc) in zip(got, want):
        np.testing.assert_allclose(p, wp, atol=1e-3)
        np.testing.assert_allclose(c, wc, atol=1e-4)
        assert score == 0.5 if fmt != "dlc" else np.isnan(score)  # DeepLabCut has no score


def test_reading_back_more_frames_than_the_file_has(tmp_path):
    out = tmp_path / "p.csv"
    write_tracked(out, "csv", stop_after=8)
    state = read_progress(out)
    got = read_last_frames(out, "csv", tracked_header(), state, 100)  # the whole file
    assert got[0][0] == 0 and got[-1][0] == 7


def test_a_damaged_row_is_named(tmp_path):
    out = tmp_path / "p.csv"
    write_tracked(out, "csv", stop_after=8)
    state = read_progress(out)
    text = out.read_text().splitlines()
    text[-1] = text[-1].replace(",", ";", 3)
    out.write_text("\n".join(text) + "\n")
    state["offsets"]["p.csv"] = out.stat().st_size
    with pytest.raises(OutputError, match="p.csv: a row near its end cannot be read back"):
        read_last_frames(out, "csv", tracked_header(), state, 3)


def test_the_end_of_a_long_file_is_read_in_growing_blocks(tmp_path):
    from kpstudio.core.video_output import open_writer

    out = tmp_path / "p.csv"
    writer = open_writer(out, "csv", tracked_header(), None, {})
    frames, inst, xy, conf, tracks = tracked_rows(0, 4000)
    writer.write(frames, inst, xy, conf, None, tracks=tracks, upto=4000)
    writer.close(complete=False)
    assert out.stat().st_size > 4 * (1 << 16)  # more than the first block holds
    got = read_last_frames(out, "csv", tracked_header(), read_progress(out), 3000)
    assert got[0][0] == 1000 and got[-1][0] == 3999
    assert len(got) == sum(1 for f, t in zip(frames, tracks) if f >= 1000 and t >= 0)
