"""The last frames of a partial tracked predictions file, read back to resume it.

A resumed multi-animal run must go on with the same track ids and the same motion, and its
smoothing needs the raw points of the frames before it. Rather than saving the tracker in the
sidecar (its state is ahead of the rows written while smoothing holds frames back), the resumed
run reads the file's own last rows: every row up to the sidecar's offset is whole, and each
format writes one frame (the CSV: one instance) per line, so only the end of the file is read,
however long the video. Values come back as written (3 decimals), which moves a resumed
smoothing by at most ~1e-3 px from an uninterrupted one.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from kpstudio.core.video_output import OutputError, TrackHeader

# How the header lines begin (every other line is a row and must read as one).
HEAD_JSON = '{"video"'
HEAD_CELLS = {"frame", "scorer", "individuals", "bodyparts", "coords"}
# (frame, track, xy (K, 2), confidence (K,), object score: NaN where the file has none)
Row = tuple[int, int, np.ndarray, np.ndarray, float]


def read_last_frames(out: Path, fmt: str, header: TrackHeader, resume: dict, frames: int):
    """Rows (frame, track, xy, confidence, score) of the `frames` frames before the sidecar's
    frames_done, in file order; rows without a track (-1) are left out."""
    out = Path(out)
    end = int(resume["offsets"][out.name])
    first = int(resume["frames_done"]) - frames
    size = 1 << 16
    with open(out, "rb") as f:
        while True:
            start = max(0, end - size)
            f.seek(start)
            lines = f.read(end - start).decode("utf-8").split("\n")
            if start > 0:
                lines = lines[1:]  # cut in the middle
            rows = [row for line in lines if line for row in _parse(line, fmt, header, out)]
            if start == 0 or (rows and rows[0][0] < first):
                return [row for row in rows if row[0] >= first and row[1] >= 0]
            size *= 4


def _parse(line: str, fmt: str, header: TrackHeader, out: Path) -> list[Row]:
    """The rows of one line; none for a header line."""
    k = len(header.keypoints)
    try:
        if fmt == "json":
            if line.startswith(HEAD_JSON):
                return []
            obj = json.loads(line.rstrip(","))
            return [_json_row(obj["frame"], inst, header.keypoints) for inst in obj["instances"]]
        cells = next(csv.reader([line]))
        if cells and cells[0] in HEAD_CELLS:
            return []
        frame = int(cells[0])
        if fmt == "csv":  # frame, time, instance, track, score, then x, y, confidence[, x, y]
            stride = 5 if header.smoothed else 3
            values = _floats(cells[5:]).reshape(k, stride)
            return [(frame, int(cells[3]), values[:, :2], values[:, 2], _floats(cells[4:5])[0])]
        rows = []  # dlc: frame, then per track x, y, likelihood per keypoint (pixel indices)
        blocks = _floats(cells[1:]).reshape(header.animals, k, 3)
        for track, block in enumerate(blocks):
            if np.isfinite(block).any():
                rows.append((frame, track, block[:, :2] + 0.5, block[:, 2], np.nan))
        return rows
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise OutputError(
            f"{out}: a row near its end cannot be read back to resume ({exc}); delete it "
            "and its .progress.json to start again"
        ) from None


def _floats(cells: list[str]) -> np.ndarray:
    return np.array([float(c) if c else np.nan for c in cells], np.float64)


def _json_row(frame, inst: dict, names) -> Row:
    points = inst["keypoints"]
    xy = np.array(
        [[_none_nan(points[n]["x"]), _none_nan(points[n]["y"])] for n in names], np.float64
    )
    conf = np.array([_none_nan(points[n]["confidence"]) for n in names], np.float64)
    return int(frame), int(inst["track"]), xy, conf, _none_nan(inst["score"])


def _none_nan(value) -> float:
    return np.nan if value is None else float(value)
