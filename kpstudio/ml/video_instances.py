"""Several animals on every frame of a video: instances found, linked into tracks, written.

The multi-instance counterpart of video_predict.predict_video, with the same threads (a reader
decodes ahead, a renderer draws and encodes) run by the same loop (video_stages.run_stages),
streaming, flat in memory. The model
(`predictor.predict_instances(images) -> list[list[Prediction]]`, a top-down model: it finds
the animals and crops them itself) sees whole RGB frames a batch at a time; the tracker
(core/instance_tracking.py) gives every instance a track id, frame by frame in order; smoothing
(core/tracks.py) runs per track id, never across animals.

A resumed run does not re-predict the frames before its start: it is handed the rows its
partial file holds for them (core/track_resume.py) and replays them into the tracker (so ids
and motion go on) and into each track's smoother as context.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np

from kpstudio.core.instance_tracking import UNASSIGNED, InstanceTracker, TrackerParams
from kpstudio.core.labeled_video import LabeledVideoWriter
from kpstudio.core.tracks import SmoothingParams, StreamingSmoother
from kpstudio.core.video_frames import VideoInfo
from kpstudio.ml.video_predict import SMOOTH_CHUNK
from kpstudio.ml.video_stages import (
    BATCH_SIZE,
    FrameReader,
    Renderer,
    Sink,
    StageTimes,
    run_stages,
)


def is_multi_instance(predictor) -> bool:
    """A model that finds several animals: its manifest says it is top-down (the model file's
    "top_down" key) and its predictor can answer for every instance."""
    manifest = getattr(predictor, "manifest", None) or {}
    return "top_down" in manifest and callable(getattr(predictor, "predict_instances", None))


def resume_frames(fps: float, smoothing: SmoothingParams | None) -> int:
    """How many frames before a resumed run's start it must read back: those the tracker may
    still find a lost animal from, and the smoothing's context."""
    keep = TrackerParams.for_fps(fps).max_missed + 1
    return max(keep, smoothing.behind if smoothing else 0)


def predict_video_instances(
    predictor,
    info: VideoInfo,
    sink,
    *,
    start: int = 0,
    smoothing: SmoothingParams | None = None,
    labeled: LabeledVideoWriter | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
    animals: int | None = None,
    earlier: list | None = None,
    next_track: int = 0,
) -> StageTimes:
    """Frames start… of the video into `sink`: sink.write(frames, instances, xy, conf, smooth,
    tracks=, upto=) with a row per instance, each with its track id. `animals`: how many there
    are, if known (ids then never exceed it); `earlier`: rows (frame, track, xy, conf) of the
    frames before `start` from a partial file; `next_track`: the first id not used in it."""
    times = StageTimes(runtime="predict_instances")
    t_start = time.perf_counter()
    k = len(predictor.skeleton)
    tracker = InstanceTracker(k, animals, TrackerParams.for_fps(info.fps))
    for frame, track, xy, _, score in earlier or []:
        tracker.seed(frame, track, xy, score)
    tracker.next_id = max(tracker.next_id, next_track)
    tracker.frame = start - 1
    smoother = TrackSmoothing(smoothing, start, k, earlier or []) if smoothing else None
    reader = FrameReader(info, start, None, 0, 0, batch_size, True, times)
    renderer = Renderer(_AllInstances(labeled), times) if labeled is not None else None

    def on_batch(index, _, frames) -> int:
        t1 = time.perf_counter()
        rgb = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames]
        found = predictor.predict_instances(rgb)
        if len(found) != len(frames):
            raise ValueError(
                f"the model answered for {len(found)} of {len(frames)} frames of "
                f"{info.path.name} (from frame {index})"
            )
        t2 = time.perf_counter()
        times.inference += t2 - t1
        rows = []
        for f, preds in enumerate(found):
            ids = tracker.update([(p.xy, p.confidence, p.score) for p in preds], index + f)
            rows += [(index + f, p, t) for p, t in zip(preds, ids)]
        batch = FrameRows(rows, index, index + len(frames), frames, k)
        if smoother is None:
            _write(sink, renderer, batch, None)
        else:
            for ready, smooth in smoother.push(batch):
                _write(sink, renderer, ready, smooth)
        times.frames += len(frames)
        times.write += time.perf_counter() - t2
        return len(frames)

    def on_end():
        if smoother is not None:
            for ready, smooth in smoother.push(None):
                _write(sink, renderer, ready, smooth)

    return run_stages(reader, renderer, times, t_start, sink, info.frames, progress, on_batch,
                      on_end=on_end)  # fmt: skip


class TrackArraySink(Sink):
    """Keeps every row predict_video_instances writes (frame, track, xy, conf, score) and how
    far the video is done (`upto`: every frame before it was predicted, found animals or not);
    the player's whole-video answers are made from it."""

    def __init__(self):
        self.parts: list[tuple] = []
        self.upto: int | None = None

    def write(self, frames, instances, xy, conf, smooth, tracks=None, upto=None,
              scores=None) -> None:  # fmt: skip
        self.parts.append((np.asarray(frames, np.int64), np.asarray(tracks, np.int64),
                           np.asarray(xy, np.float32), np.asarray(conf, np.float32),
                           np.asarray(scores, np.float32)))  # fmt: skip
        self.upto = upto

    def rows(self) -> tuple[np.ndarray, ...]:
        """(frame (R,), track (R,), xy (R, K, 2), conf (R, K), score (R,)); R may be 0."""
        if not self.parts:
            return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 0, 2), np.float32),
                    np.zeros((0, 0), np.float32), np.zeros(0, np.float32))  # fmt: skip
        return tuple(np.concatenate([part[i] for part in self.parts]) for i in range(5))


class FrameRows:
    """The instances of frames [first, end) as rows (frame order), and the decoded frames."""

    FIELDS = ("frame", "instance", "track", "score", "xy", "conf")

    def __init__(self, rows, first: int, end: int, frames, k: int):
        self.first, self.end, self.frames = first, end, frames
        self.frame = np.array([r[0] for r in rows], np.int64)
        self.instance = np.array([r[1].instance for r in rows], np.int64)
        self.track = np.array([r[2] for r in rows], np.int64)
        self.score = np.array([r[1].score for r in rows], np.float64)
        self.xy = np.array([r[1].xy for r in rows], np.float64).reshape(-1, k, 2)
        self.conf = np.array([r[1].confidence for r in rows], np.float64).reshape(-1, k)

    def take(self, lo: int, hi: int) -> FrameRows:
        """The rows of frames [lo, hi)."""
        part = FrameRows([], lo, hi, None, self.xy.shape[1])
        keep = (self.frame >= lo) & (self.frame < hi)
        for name in FrameRows.FIELDS:
            setattr(part, name, getattr(self, name)[keep])
        if self.frames is not None:
            part.frames = self.frames[lo - self.first : hi - self.first]
        return part


def _join(a: FrameRows, b: FrameRows) -> FrameRows:
    out = FrameRows([], a.first, b.end, None, a.xy.shape[1])
    for name in FrameRows.FIELDS:
        setattr(out, name, np.concatenate([getattr(a, name), getattr(b, name)]))
    out.frames = a.frames + b.frames if a.frames is not None and b.frames is not None else None
    return out


def _write(sink, renderer, rows: FrameRows, smooth) -> None:
    if rows.end <= rows.first:
        return
    sink.write(rows.frame, rows.instance, rows.xy, rows.conf, smooth,
               tracks=rows.track, upto=rows.end, scores=rows.score)  # fmt: skip
    if renderer is not None and rows.frames is not None:
        shown = rows.xy if smooth is None else np.where(np.isfinite(smooth), smooth, rows.xy)
        per_frame = [rows.frame == f for f in range(rows.first, rows.end)]
        drawn = [(shown[m], rows.track[m]) for m in per_frame]  # points and their track ids
        renderer.queue.put((rows.frames, drawn, [rows.conf[m] for m in per_frame]))


class _AllInstances:
    """The renderer's writer for several instances a frame: draws them all, appends once."""

    def __init__(self, writer: LabeledVideoWriter):
        self.writer = writer

    def write(self, frame, drawn, conf) -> None:
        xy, tracks = drawn
        self.writer.write_all(frame, xy, conf, [t if t >= 0 else "?" for t in tracks])

    def close(self) -> None:
        self.writer.close()


class TrackSmoothing:
    """Streaming smoothing per track id: each track's points over every frame since it first
    appeared (NaN where it has no instance) go through their own StreamingSmoother, so values
    equal smooth_track on that track's whole series. Rows leave in frame order, all the rows of
    a frame together, `params.ahead` frames behind the newest."""

    def __init__(self, params: SmoothingParams, start: int, k: int, earlier: list):
        self.params, self.k = params, k
        self.smoothers: dict[int, StreamingSmoother] = {}
        self.last_seen: dict[int, int] = {}
        self.pending: FrameRows | None = None
        self.fed = start  # frames before this went to the smoothers
        if earlier:  # a resumed run: the file's rows before `start` are each track's context
            by_track: dict[int, list] = {}
            for frame, track, xy, conf, _ in earlier:
                by_track.setdefault(track, []).append((frame, xy, conf))
            for track, rows in by_track.items():
                t0 = rows[0][0]
                xy = np.full((start - t0, k, 2), np.nan)
                conf = np.full((start - t0, k), np.nan)
                for frame, p, c in rows:
                    xy[frame - t0], conf[frame - t0] = p, c
                self.smoothers[track] = StreamingSmoother(params, t0, start - t0)
                self.smoothers[track].push(xy, conf)
                self.last_seen[track] = rows[-1][0]

    def push(self, rows: FrameRows | None):
        """Add a batch (None: the end of the video); yields (rows, smooth (n, K, 2)) ready."""
        final = rows is None
        if not final:
            self.pending = rows if self.pending is None else _join(self.pending, rows)
        if self.pending is None:
            return
        end = self.pending.end
        # Every smoother re-fits its window on each push: feed SMOOTH_CHUNK frames at a time.
        if not final and end - self.fed < SMOOTH_CHUNK:
            return
        new = self.pending.take(self.fed, end)
        for track in np.unique(new.track[new.track != UNASSIGNED]):
            if int(track) not in self.smoothers:
                first = int(new.frame[new.track == track].min())
                self.smoothers[int(track)] = StreamingSmoother(self.params, first)
        smoothed: dict[int, tuple[int, np.ndarray]] = {}
        for track, smoother in self.smoothers.items():
            mine = new.track == track
            # A track new in this batch starts at its first frame, the others where they were.
            begin = smoother.start if smoother.xy is None else self.fed
            xy = np.full((end - begin, self.k, 2), np.nan)
            conf = np.full((end - begin, self.k), np.nan)
            xy[new.frame[mine] - begin] = new.xy[mine]
            conf[new.frame[mine] - begin] = new.conf[mine]
            if mine.any():
                self.last_seen[track] = int(new.frame[mine].max())
            smoothed[track] = smoother.push(xy, conf, final=final)
        self.fed = end
        ready_to = end if final else end - self.params.ahead
        lo = self.pending.first
        if ready_to <= lo:
            return
        out = self.pending.take(lo, ready_to)
        smooth = np.full(out.xy.shape, np.nan)
        for r, (frame, track) in enumerate(zip(out.frame, out.track)):
            if track in smoothed:
                got_first, values = smoothed[int(track)]
                smooth[r] = values[frame - got_first]
        self.pending = self.pending.take(ready_to, end)
        # A track unseen for longer than a value depends on is done: it restarts if it returns
        # (its gap is past any interpolation, so the values are the same).
        done = [t for t, seen in self.last_seen.items() if seen < ready_to - self.params.behind]
        for track in done:
            self.smoothers.pop(track, None)
            self.last_seen.pop(track)
        yield out, smooth
