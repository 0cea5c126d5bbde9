"""Frames from a video for labeling: probe it, pick frames (evenly or visually diverse), save PNGs.

Frame indices count decoded frames from 0. Containers only estimate their length and seeking is
only as exact as the file's timestamps, so reads check where they landed and fall back to
decoding straight through.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

Progress = Callable[[int, int], None] | None
ShouldStop = Callable[[], bool] | None

METHODS = ("even", "diverse")
# Suffixes taken for videos where a command accepts images or videos.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".mpg", ".mpeg", ".m4v", ".wmv", ".webm")
# Candidates per wanted frame for "diverse": enough to see every scene, few enough to stay fast.
CANDIDATES_PER_FRAME = 20
THUMB_SIZE = 32
# A seek decodes from the previous keyframe (often 12-250 frames back), so wanted frames closer
# together than this on average are cheaper to reach by decoding straight through.
SEQUENTIAL_GAP = 50


class VideoError(ValueError):
    """A video cannot be read; the message names the file and says why."""


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    frames: int  # as the container reports it: an estimate for some formats
    fps: float
    width: int  # of the decoded frames, as the user sees them (rotation metadata applied)
    height: int


def _open(path: Path) -> cv2.VideoCapture:
    if not path.exists():
        raise VideoError(f"{path}: the file does not exist")
    if path.is_dir():
        raise VideoError(f"{path}: this is a folder, not a video file")
    # FFmpeg only: the default backend list also holds CV_IMAGES, which would take a file named
    # like "frame_0001.png" for the start of an image sequence.
    has_ffmpeg = cv2.CAP_FFMPEG in cv2.videoio_registry.getStreamBackends()
    backend = cv2.CAP_FFMPEG if has_ffmpeg else cv2.CAP_ANY
    cap = cv2.VideoCapture(str(path), backend)
    if not cap.isOpened():
        cap.release()
        raise VideoError(
            f"{path}: the file could not be opened as a video (it is not a video, is damaged, "
            "or uses a codec kpstudio's OpenCV cannot decode)"
        )
    return cap


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Open a video and decode its first frame; raises VideoError if it has none to give."""
    path = Path(path)
    cap = _open(path)
    try:
        frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        ok, first = cap.read()
    finally:
        cap.release()
    if not ok or first is None:
        raise VideoError(f"{path}: the video has no frames that could be decoded")
    if frames <= 0:  # some streams carry no length at all
        frames = count_decodable_frames(path)
    return VideoInfo(path, frames, fps, int(first.shape[1]), int(first.shape[0]))


def _never() -> bool:
    return False


def _check(stop: Callable[[], bool]) -> None:
    if stop():
        raise InterruptedError("reading the video was cancelled")


def _even(frames: int, count: int) -> list[int]:
    if count >= frames:
        return list(range(frames))
    # Centre of each of `count` equal spans, so the first and last frames (often black or a
    # fade) are not favoured.
    return sorted({int((i + 0.5) * frames / count) for i in range(count)})


def _candidates(frames: int, count: int, method: str) -> list[int]:
    """Frames "diverse" must look at; empty when nothing needs reading."""
    if method not in METHODS:
        raise ValueError(f"unknown frame picking method {method!r}; use one of {METHODS}")
    if count < 1:
        raise ValueError(f"cannot pick {count} frames; ask for at least one")
    if method == "even" or count >= frames:
        return []
    return _even(frames, min(frames, CANDIDATES_PER_FRAME * count))


class _Tally:
    """One progress count across phases, so a progress bar only ever moves forward."""

    def __init__(self, callback: Progress, total: int) -> None:
        self.callback, self.done, self.total = callback, 0, total

    def step(self) -> None:
        self.done += 1
        self.total = max(self.total, self.done)
        if self.callback is not None:
            self.callback(self.done, self.total)


def _iter_frames(
    path: Path, wanted: list[int], stop: Callable[[], bool], sequential: bool | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, BGR frame) for the wanted indices that exist, in increasing order."""
    wanted = sorted(set(wanted))
    if not wanted:
        return
    if sequential is None:
        sequential = (wanted[-1] + 1) / len(wanted) <= SEQUENTIAL_GAP
    cap, pos, i = _open(path), 0, 0
    try:
        while i < len(wanted):
            target = wanted[i]
            if not sequential:
                cap.set(cv2.CAP_PROP_POS_FRAMES, target)
                pos = target
            while pos < target:
                _check(stop)
                if not cap.grab():
                    return  # the container promised more frames than it holds
                pos += 1
            _check(stop)
            ok, frame = cap.read()
            if not ok:
                return
            pos += 1
            # FFmpeg derives the position from the decoded frame's timestamp; a mismatch means
            # this file cannot be seeked exactly, so decode it from the start instead.
            if not sequential and round(cap.get(cv2.CAP_PROP_POS_FRAMES)) != pos:
                cap.release()
                cap, pos, sequential = _open(path), 0, True
                continue
            yield target, frame
            i += 1
    finally:
        cap.release()


def open_at(path: str | os.PathLike, start: int) -> cv2.VideoCapture:
    """A capture whose next read() gives frame `start` (0-based), checked like _iter_frames:
    a seek that lands elsewhere falls back to decoding from the start."""
    path = Path(path)
    cap = _open(path)
    if start <= 0:
        return cap
    cap.set(cv2.CAP_PROP_POS_FRAMES, start - 1)
    ok = cap.grab()
    if ok and round(cap.get(cv2.CAP_PROP_POS_FRAMES)) == start:
        return cap
    cap.release()
    cap = _open(path)
    for _ in range(start):
        if not cap.grab():
            break  # fewer frames than `start`: the next read() says so
    return cap


def count_decodable_frames(path: str | os.PathLike, should_stop: ShouldStop = None) -> int:
    """Decode the whole video and count its frames: slow, but exact where the header is not."""
    stop = should_stop or _never
    cap, n = _open(Path(path)), 0
    try:
        while cap.grab():
            n += 1
            _check(stop)
    finally:
        cap.release()
    return n


def _thumbnail(frame: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, (THUMB_SIZE, THUMB_SIZE), interpolation=cv2.INTER_AREA)
    return small.reshape(-1).astype(np.float32) / 255.0


def _cluster_pick(features: np.ndarray, indices: np.ndarray, count: int) -> list[int]:
    """K-means on thumbnails; from each cluster, the frame nearest its centre."""
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 1e-4)
    # cv2.kmeans draws its k-means++ seeds from the thread's RNG: seed it so the same video
    # always offers the same frames.
    cv2.setRNGSeed(0)
    _, labels, centres = cv2.kmeans(features, count, None, criteria, 3, cv2.KMEANS_PP_CENTERS)
    labels = labels.ravel()
    chosen: list[int] = []
    for c in range(count):
        members = np.flatnonzero(labels == c)
        if members.size:
            d = np.sum((features[members] - centres[c]) ** 2, axis=1)
            chosen.append(int(members[np.argmin(d)]))
    # Identical thumbnails (a static scene) can leave clusters empty or sharing a frame: top up
    # with evenly spaced candidates, which are `count` distinct ones, so enough always remain.
    chosen = list(dict.fromkeys(chosen))
    chosen += [i for i in _even(len(indices), count) if i not in chosen][: count - len(chosen)]
    return sorted(int(indices[i]) for i in chosen)


def _pick(
    path: Path, frames: int, count: int, method: str, tally: _Tally, stop: Callable[[], bool],
    sequential: bool | None = None,
) -> list[int]:  # fmt: skip
    candidates = _candidates(frames, count, method)
    if not candidates:
        return _even(frames, count)
    indices, thumbs = [], []
    for index, frame in _iter_frames(path, candidates, stop, sequential):
        indices.append(index)
        thumbs.append(_thumbnail(frame))
        tally.step()
    if len(indices) <= count:
        return indices
    return _cluster_pick(np.stack(thumbs), np.asarray(indices), count)


def pick_frames(
    path: str | os.PathLike, count: int, method: str = "even",
    progress: Progress = None, should_stop: ShouldStop = None,
) -> list[int]:  # fmt: skip
    """Sorted frame indices to label: "even" spacing, or "diverse" (K-means on thumbnails).

    `progress(done, total)` follows the candidate frames "diverse" decodes; `should_stop()`
    returning True raises InterruptedError.
    """
    path = Path(path)
    info = probe_video(path)
    tally = _Tally(progress, len(_candidates(info.frames, count, method)))
    return _pick(path, info.frames, count, method, tally, should_stop or _never)


def frame_file_name(video: Path, index: int) -> str:
    return f"{video.stem}_{index:06d}.png"


def extract_frames(
    path: str | os.PathLike, out_dir: str | os.PathLike, count: int, method: str = "even",
    progress: Progress = None, should_stop: ShouldStop = None,
) -> list[Path]:  # fmt: skip
    """Pick frames and save them as <videostem>_<index:06d>.png in out_dir; the sorted paths.

    All files are written under hidden temporary names and renamed only once every frame is
    saved, so a cancel (InterruptedError) or an error leaves out_dir as it was.
    """
    path, out_dir = Path(path), Path(out_dir)
    info = probe_video(path)
    stop = should_stop or _never
    candidates = _candidates(info.frames, count, method)
    tally = _Tally(progress, len(candidates) + 2 * min(count, info.frames))
    made_dir = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    parts: list[Path] = []
    frames, sequential = info.frames, None
    try:
        while True:
            indices = _pick(path, frames, count, method, tally, stop, sequential)
            written = []
            for index, frame in _iter_frames(path, indices, stop, sequential):
                tally.step()
                parts.append(_write_part(path, out_dir, index, frame))
                written.append(index)
                tally.step()
            if len(written) == len(indices) or sequential:
                break
            # The header promised more frames than decode: count the real ones, pick again
            # among them, and decode straight through this time.
            for p in parts:
                p.unlink(missing_ok=True)
            parts.clear()
            frames, sequential = count_decodable_frames(path, stop), True
        final = [out_dir / frame_file_name(path, index) for index in written]
        for target in final:
            os.replace(_part_name(target), target)
        return sorted(final)
    except BaseException:
        for p in parts:
            p.unlink(missing_ok=True)
        if made_dir and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise


def save_frames(
    path: str | os.PathLike, out_dir: str | os.PathLike, indices: list[int],
    should_stop: ShouldStop = None,
) -> dict[int, Path]:  # fmt: skip
    """Save the given frames as <videostem>_<index:06d>.png in out_dir: {index: path} of those
    the video holds. All or nothing, as extract_frames."""
    path, out_dir = Path(path), Path(out_dir)
    stop = should_stop or _never
    made_dir = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    parts: dict[int, Path] = {}
    try:
        for index, frame in _iter_frames(path, indices, stop):
            parts[index] = _write_part(path, out_dir, index, frame)
        final = {index: out_dir / frame_file_name(path, index) for index in parts}
        for index, target in final.items():
            os.replace(parts[index], target)
        return final
    except BaseException:
        for p in parts.values():
            p.unlink(missing_ok=True)
        if made_dir and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise


def _write_part(video: Path, out_dir: Path, index: int, frame: np.ndarray) -> Path:
    """Frame `index` (BGR) as a PNG under its hidden temporary name; that name."""
    # VideoCapture gives BGR and imencode expects BGR: colours reach the PNG as seen.
    # imencode + write_bytes, as cv2.imwrite fails on non-ASCII Windows paths.
    ok, buf = cv2.imencode(".png", frame)
    if not ok:
        raise VideoError(f"{video}: frame {index} could not be encoded as PNG")
    part = _part_name(out_dir / frame_file_name(video, index))
    part.write_bytes(buf.tobytes())
    return part


def _part_name(target: Path) -> Path:
    # A leading dot and a non-image suffix keep folder scans from picking up unfinished files.
    return target.with_name(f".{target.name}.part")
