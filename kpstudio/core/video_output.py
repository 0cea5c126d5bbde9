"""Per-frame predictions of a video, streamed to a file as they come: CSV, JSON or DeepLabCut CSV
(the writer of each format: core/video_writers.py).

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

OUTPUT_FORMATS = ("csv", "json", "dlc")
SUFFIXES = {"csv": ".csv", "json": ".json", "dlc": ".csv"}


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


def open_writer(
    out: Path, fmt: str, header: TrackHeader, resume: dict | None, state: dict
) -> TrackWriter:
    from kpstudio.core.video_writers import WRITERS  # the formats build on TrackWriter above

    return WRITERS[fmt](Path(out), header, resume, state)
