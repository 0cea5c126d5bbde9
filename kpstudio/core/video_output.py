"""Per-frame predictions of a video, streamed to a file as they come: CSV, JSON or DeepLabCut CSV.

Rows are written a batch at a time and never held, so memory stays flat however long the video.
A file stopped early (Ctrl+C) is still valid: the CSVs hold whole rows only, the JSON is closed
with `"complete": false` and `"frames_done"`. Beside it, `OUT.progress.json` says where it
stopped (frames done and the byte offset of each file's last whole row); `--resume` checks that
the file's header is the one this run would write, cuts the file there and goes on. The sidecar
exists only while a file is partial.

Rows are (frame, instance): one row per instance found in a frame (instance 0 of a
single-instance model). A multi-instance model's rows also carry the track id the tracker
(core/instance_tracking.py) gave them (-1 for an instance no track took) and the model's
object score: `track` and `score` columns in the CSV, "track" and "score" keys in the JSON,
and DeepLabCut's multi-animal layout (a block of columns per track under a fourth header row,
`individuals`) in its CSV. A frame where no animal was found has no row in the CSV and an
empty instance list in the JSON. Coordinates are original video pixels in kpstudio's
pixel-corner convention, except in the DeepLabCut file, which uses DeepLabCut's pixel-index
convention (a pixel's centre is an integer) so that its tools read it as their own output.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kpstudio.core.formats.spreadsheet import csv_cell

OUTPUT_FORMATS = ("csv", "json", "dlc")
SUFFIXES = {"csv": ".csv", "json": ".json", "dlc": ".csv"}
# DeepLabCut writes its own filtered predictions beside the raw ones under this suffix.
DLC_FILTERED_SUFFIX = "_filtered"


class OutputError(ValueError):
    """An output file cannot be written or resumed; the message names it and says why."""


def _num(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else ""


@dataclass(frozen=True)
class TrackHeader:
    """What a predictions file is about; written at its top and compared on --resume."""

    video: str  # the video's file name
    model: str  # the model file's name
    keypoints: tuple[str, ...]
    fps: float
    frame_count: int  # as the container reports it (an estimate for some formats)
    width: int
    height: int
    smoothed: bool
    # A multi-instance model's file: rows carry track ids; `animals` > 0 is the number of
    # animals the user said there are (track ids 0 … animals - 1), 0 when not known.
    tracked: bool = False
    animals: int = 0

    def fields(self) -> dict:
        """What the JSON file's head holds: a single-instance file's as before tracking."""
        head = {**asdict(self), "keypoints": list(self.keypoints)}
        if not self.tracked:
            del head["tracked"], head["animals"]
        return head


def format_for(path: Path, fmt: str | None) -> str:
    """The output format: `fmt` if given, else from the suffix (.csv or .json)."""
    if fmt is not None:
        if fmt not in OUTPUT_FORMATS:
            raise OutputError(f"unknown output format {fmt!r}; use one of {OUTPUT_FORMATS}")
        if path.suffix.lower() != SUFFIXES[fmt]:
            raise OutputError(f"{path}: a {fmt} file must end in {SUFFIXES[fmt]}")
        return fmt
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise OutputError(
            f"{path}: video predictions are written as .csv or .json (or --format dlc with .csv)"
        )
    return suffix[1:]


def progress_path(out: Path) -> Path:
    return out.with_name(out.name + ".progress.json")


def read_progress(out: Path) -> dict | None:
    """The sidecar of a partial file, None when the file is complete or absent."""
    side = progress_path(out)
    if not side.exists():
        return None
    try:
        return json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OutputError(
            f"{side}: unreadable progress file ({exc}); delete it and {out.name} to start again"
        ) from None


def write_progress(out: Path, state: dict) -> None:
    side = progress_path(out)
    tmp = side.with_name(f".{side.name}.tmp")
    tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
    os.replace(tmp, side)


class _Stream:
    """One output file written in whole chunks; resumable at a byte offset after its header."""

    def __init__(self, path: Path, header: bytes, resume_at: int | None):
        self.path = path
        if resume_at is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(path, "wb")  # noqa: SIM115 (closed by close())
            self.file.write(header)
            return
        try:
            self.file = open(path, "r+b")  # noqa: SIM115
        except OSError as exc:
            raise OutputError(f"{path}: cannot be reopened to resume ({exc.strerror})") from None
        found = self.file.read(len(header))
        if found != header or resume_at < len(header):
            self.file.close()
            raise OutputError(
                f"{path}: its header is not the one this run writes (another "
                "video, model, keypoints or --smooth); cannot resume it"
            )
        self.file.seek(resume_at)
        self.file.truncate()

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def close(self, trailer: bytes = b"") -> None:
        self.file.write(trailer)
        self.file.close()


class TrackWriter:
    """Base of the three formats: write(rows) per batch, checkpoint(), close(complete)."""

    def __init__(self, out: Path, header: TrackHeader, resume: dict | None, state: dict):
        """`resume`: the sidecar of the partial file to continue; `state`: what the sidecar
        records besides the offsets (what the run was asked to do, to check on --resume)."""
        self.out, self.header, self.state = Path(out), header, dict(state)
        self.frames_done = resume["frames_done"] if resume else 0
        offsets = resume["offsets"] if resume else {}
        self.streams = []
        try:
            for path, text in self._files():
                if resume and path.name not in offsets:
                    raise OutputError(f"{progress_path(self.out)} does not name {path.name}")
                self.streams.append(_Stream(path, text.encode("utf-8"), offsets.get(path.name)))
        except BaseException:
            for stream in self.streams:
                stream.file.close()
            raise
        self.whole = [s.file.tell() for s in self.streams]

    def _files(self) -> list[tuple[Path, str]]:
        """(path, header text) of each file this format writes."""
        raise NotImplementedError

    def _chunks(self, frames, instances, xy, conf, smooth, tracks, upto) -> list[str]:
        raise NotImplementedError

    def write(
        self, frames, instances, xy, conf, smooth=None, tracks=None, upto=None, scores=None
    ) -> None:
        """Rows of whole frames: frames (n,), instances (n,), xy (n, K, 2), conf (n, K), smooth
        (n, K, 2) or None; tracks (n,) track ids and scores (n,) object scores (a tracked file
        only). `upto`: the rows hold every instance of the frames before it (default: the frame
        after the last row), so frames without an animal still count as done."""
        upto = int(frames[-1]) + 1 if upto is None and len(frames) else upto
        if self.header.tracked and tracks is None:
            raise OutputError(f"{self.out}: a tracked file's rows need their track ids")
        tracks = tracks if self.header.tracked else None
        self._scores = np.full(len(frames), np.nan) if scores is None else np.asarray(scores)
        chunks = self._chunks(frames, instances, xy, conf, smooth, tracks, upto)
        for stream, text in zip(self.streams, chunks):
            stream.write(text.encode("utf-8"))
        # Only now is every file whole up to here: a Ctrl+C between two streams' writes leaves
        # the previous point as the one to cut back to.
        self.whole = [s.file.tell() for s in self.streams]
        if upto is not None:
            self.frames_done = max(self.frames_done, upto)
        if tracks is not None and len(tracks):
            # The sidecar's record of ids used so far: a resumed run never reuses one for a
            # new animal, even one whose rows lie before the part it reads back.
            self.state["next_track"] = max(self.state.get("next_track", 0), int(max(tracks)) + 1)

    def checkpoint(self, state: dict | None = None) -> None:
        """Record in the sidecar how far the files are whole (call between batches)."""
        for stream in self.streams:
            stream.file.flush()
        offsets = {s.path.name: w for s, w in zip(self.streams, self.whole)}
        self.state.update(state or {})
        write_progress(
            self.out,
            {
                **self.state,
                "frames_done": self.frames_done,
                "offsets": offsets,
                "header": asdict(self.header),
            },
        )

    def close(self, complete: bool) -> None:
        """Finish the files; a partial one (complete=False) is cut back to its last whole
        frame, closed validly and its sidecar written."""
        if not complete:
            for stream, whole in zip(self.streams, self.whole):
                stream.file.seek(whole)
                stream.file.truncate()
            self.checkpoint()
        for stream in self.streams:
            stream.close(self._trailer(complete).encode("utf-8"))
        if complete:
            progress_path(self.out).unlink(missing_ok=True)

    def _trailer(self, complete: bool) -> str:
        return ""


def _csv_text(rows) -> str:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


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


def open_writer(
    out: Path, fmt: str, header: TrackHeader, resume: dict | None, state: dict
) -> TrackWriter:
    return WRITERS[fmt](Path(out), header, resume, state)
