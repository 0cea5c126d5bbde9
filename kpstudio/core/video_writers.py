"""The writers of core/video_output.py's three formats: kpstudio's CSV, JSON and DeepLabCut's
analysis CSV (single- and multi-animal). Each says what its file's header holds (`_files`) and
turns a batch of rows into text (`_chunks`); TrackWriter does the streaming, checkpoints and
resuming."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from kpstudio.core.formats.spreadsheet import csv_cell
from kpstudio.core.video_output import OutputError, TrackHeader, TrackWriter, _csv_text, _num

# DeepLabCut writes its own filtered predictions beside the raw ones under this suffix.
DLC_FILTERED_SUFFIX = "_filtered"


class CsvTrackWriter(TrackWriter):
    """frame, time, instance, then <kp>_x, <kp>_y, <kp>_confidence (and <kp>_x_smooth,
    <kp>_y_smooth with --smooth) for each keypoint; empty cells where a value is missing."""

    def _files(self):
        cols = ["frame", "time", "instance"] + (["track", "score"] if self.header.tracked else [])
        for name in self.header.keypoints:
            cols += [f"{name}_x", f"{name}_y", f"{name}_confidence"]
            if self.header.smoothed:
                cols += [f"{name}_x_smooth", f"{name}_y_smooth"]
        return [(self.out, _csv_text([[csv_cell(c) for c in cols]]))]

    def _chunks(self, frames, instances, xy, conf, smooth, tracks, upto):
        fps = self.header.fps if self.header.fps > 0 else float("nan")
        rows = []
        for r, frame in enumerate(frames):
            row = [
                csv_cell(str(int(frame))),
                csv_cell(_num(frame / fps, 4)),
                csv_cell(str(int(instances[r]))),
            ]
            if tracks is not None:
                row += [csv_cell(str(int(tracks[r]))), csv_cell(_num(self._scores[r], 4))]
            for k in range(len(self.header.keypoints)):
                row += [
                    csv_cell(_num(xy[r, k, 0], 3)),
                    csv_cell(_num(xy[r, k, 1], 3)),
                    csv_cell(_num(conf[r, k], 4)),
                ]
                if smooth is not None:
                    row += [csv_cell(_num(smooth[r, k, 0], 3)), csv_cell(_num(smooth[r, k, 1], 3))]
            rows.append(row)
        return [_csv_text(rows)]


class DlcTrackWriter(TrackWriter):
    """DeepLabCut's analysis CSV: three header rows (scorer / bodyparts / coords), then the
    frame index and x, y, likelihood per bodypart. With --smooth the smoothed points go to
    OUT_filtered.csv in the same layout, as DeepLabCut's filterpredictions writes them.

    A tracked file uses DeepLabCut's multi-animal layout: a fourth header row, `individuals`
    (after scorer), names a block of columns per track (track0 … track<animals - 1>), and each
    frame is one row, empty where a track has no instance. The blocks are fixed at the top, so
    the number of animals must be known."""

    def __init__(self, out: Path, header: TrackHeader, resume: dict | None, state: dict):
        if header.tracked and header.animals < 1:
            raise OutputError(
                f"{out}: DeepLabCut's multi-animal CSV has a block of columns per animal; "
                "say how many there are (--animals N)"
            )
        super().__init__(out, header, resume, state)

    def _files(self):
        scorer = "kpstudio_" + Path(self.header.model).stem
        k = self.header.keypoints
        blocks = self.header.animals if self.header.tracked else 1
        rows = [["scorer"] + [scorer] * 3 * len(k) * blocks]
        if self.header.tracked:
            rows.append(["individuals"] + [name for name in track_names(blocks)
                                           for _ in range(3 * len(k))])  # fmt: skip
        rows += [
            ["bodyparts"] + [n for n in k for _ in range(3)] * blocks,
            ["coords"] + ["x", "y", "likelihood"] * len(k) * blocks,
        ]
        text = _csv_text([[csv_cell(c) for c in row] for row in rows])
        files = [(self.out, text)]
        if self.header.smoothed:
            name = self.out.stem + DLC_FILTERED_SUFFIX + self.out.suffix
            files.append((self.out.with_name(name), text))
        return files

    def _chunks(self, frames, instances, xy, conf, smooth, tracks, upto):
        if tracks is None and np.any(np.asarray(instances) != 0):
            raise OutputError(f"{self.out}: the DeepLabCut CSV holds one animal per frame")
        xy = np.asarray(xy) - 0.5  # pixel corners → DeepLabCut's pixel indices
        outs = [xy] + ([np.asarray(smooth) - 0.5] if smooth is not None else [])
        k = len(self.header.keypoints)
        if tracks is None:
            rows_of = [(int(f), [(0, r)]) for r, f in enumerate(frames)]
            blocks = 1
        else:  # every frame from the last one written to `upto`, each track in its block
            blocks = self.header.animals
            rows_of = [(f, []) for f in range(self.frames_done, upto)]
            for r, (f, t) in enumerate(zip(frames, tracks)):
                if 0 <= int(t) < blocks:  # -1: an instance no track took has no column
                    rows_of[int(f) - self.frames_done][1].append((int(t), r))
        chunks = []
        for points in outs:
            rows = []
            for frame, placed in rows_of:
                cells = [""] * (3 * k * blocks)
                for block, r in placed:
                    at = 3 * k * block
                    for kk in range(k):
                        cells[at + 3 * kk : at + 3 * kk + 3] = [
                            _num(points[r, kk, 0], 3),
                            _num(points[r, kk, 1], 3),
                            _num(conf[r, kk], 4),
                        ]
                rows.append([csv_cell(str(frame))] + [csv_cell(c) for c in cells])
            chunks.append(_csv_text(rows))
        return chunks


def track_names(animals: int) -> list[str]:
    """The DeepLabCut file's individuals: one per track id."""
    return [f"track{i}" for i in range(animals)]


class JsonTrackWriter(TrackWriter):
    """{"video", "model", "fps", ..., "keypoints": [...], "frames": [{"frame", "time",
    "instances": [{"instance"[, "track"], "keypoints": {name: {"x", "y", "confidence"[,
    "x_smooth", "y_smooth"]}}}]}, ...], "complete": bool, "frames_done": n}; null where a value
    is missing. One frame per line, so a resumed run can read the last ones back."""

    def __init__(self, out: Path, header: TrackHeader, resume: dict | None, state: dict):
        super().__init__(out, header, resume, state)
        self._any = self.frames_done > 0  # a frame before this one: the next needs a comma

    def _files(self):
        text = json.dumps(self.header.fields(), ensure_ascii=False)[:-1] + ', "frames": [\n'
        return [(self.out, text)]

    def _chunks(self, frames, instances, xy, conf, smooth, tracks, upto):
        fps = self.header.fps if self.header.fps > 0 else float("nan")
        names = [json.dumps(n, ensure_ascii=False) for n in self.header.keypoints]
        rows_of: dict[int, list[int]] = {}
        if tracks is not None:  # every frame up to `upto`, those without an animal too
            rows_of = {f: [] for f in range(self.frames_done, upto)}
        for r, frame in enumerate(frames):
            rows_of.setdefault(int(frame), []).append(r)
        parts = []
        for frame, rows in rows_of.items():  # one object per frame, holding its instances
            insts = []
            for r in rows:
                points = []
                for k, name in enumerate(names):
                    p = (
                        f'{name}: {{"x": {_jnum(xy[r, k, 0], 3)}, "y": {_jnum(xy[r, k, 1], 3)}'
                        f', "confidence": {_jnum(conf[r, k], 4)}'
                    )
                    if smooth is not None:
                        p += (
                            f', "x_smooth": {_jnum(smooth[r, k, 0], 3)}'
                            f', "y_smooth": {_jnum(smooth[r, k, 1], 3)}'
                        )
                    points.append(p + "}")
                track = (
                    f'"track": {int(tracks[r])}, "score": {_jnum(self._scores[r], 4)}, '
                    if tracks is not None
                    else ""
                )
                insts.append(
                    f'{{"instance": {int(instances[r])}, {track}'
                    f'"keypoints": {{{", ".join(points)}}}}}'
                )
            lead = ",\n" if self._any else ""
            self._any = True
            parts.append(
                f'{lead}{{"frame": {frame}, "time": {_jnum(frame / fps, 4)}, '
                f'"instances": [{", ".join(insts)}]}}'
            )
        return ["".join(parts)]

    def _trailer(self, complete: bool) -> str:
        return f'\n], "complete": {json.dumps(complete)}, "frames_done": {self.frames_done}}}\n'


def _jnum(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "null"


WRITERS = {"csv": CsvTrackWriter, "json": JsonTrackWriter, "dlc": DlcTrackWriter}
