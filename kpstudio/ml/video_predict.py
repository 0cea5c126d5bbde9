"""Keypoints on every frame of a video, streamed: decode in a thread, infer in batches, write.

The threads (a reader decodes and letterboxes frames ahead, this thread runs the model and
writes rows, a renderer draws and encodes the labeled video) are kpstudio.ml.video_stages'.

The model runs through kpstudio.ml.batch_runner (onnxruntime when installed). A fully
convolutional model sees the frame letterboxed to the input size's longer side but padded only
to a multiple of 32 (640×480 at input 320: 320×256, not 320×320), a fifth fewer pixels; on the
openfield val images its error was the same as the square letterbox's (2.97 vs 3.06 px), on the
video's frames the two are 0.66 px apart (median).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from kpstudio.core.labeled_video import LabeledVideoWriter
from kpstudio.core.letterbox import Letterbox
from kpstudio.core.tracks import SmoothingParams, StreamingSmoother
from kpstudio.core.video_frames import VideoInfo
from kpstudio.ml.batch_runner import make_runner
from kpstudio.ml.predictor import Predictor
from kpstudio.ml.video_stages import (
    BATCH_SIZE,
    FrameReader,
    Renderer,
    Sink,
    StageTimes,
    run_stages,
)

SMOOTH_CHUNK = 32  # frames handed to the smoother at a time


# --- geometry -------------------------------------------------------------------------------


def video_letterbox(predictor: Predictor, width: int, height: int) -> tuple[Letterbox, int, int]:
    """(letterbox, canvas height, canvas width) for frames of this size."""
    size = predictor.input_size
    scale = size / max(width, height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    if _fully_convolutional(predictor):
        canvas_w, canvas_h = _ceil32(new_w), _ceil32(new_h)
    else:
        canvas_w = canvas_h = size
    box = Letterbox(
        new_w / width, new_h / height, (canvas_w - new_w) // 2, (canvas_h - new_h) // 2, size
    )
    return box, canvas_h, canvas_w


def _ceil32(n: int) -> int:
    return -(-n // 32) * 32


def _fully_convolutional(predictor: Predictor) -> bool:
    return predictor.manifest.get("architecture", {}).get("name") == "default"


# --- the pipeline ------------------------------------------------------------------------------


def predict_video(
    predictor: Predictor,
    info: VideoInfo,
    sink: Sink,
    *,
    start: int = 0,
    smoothing: SmoothingParams | None = None,
    labeled: LabeledVideoWriter | None = None,
    batch_size: int = BATCH_SIZE,
    runtime: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    animals: int | None = None,
    earlier: list | None = None,
    next_track: int = 0,
) -> StageTimes:
    """Predict frames start… of the video into `sink` (and `labeled`), in frame order.

    With `smoothing`, rows leave `smoothing.ahead` frames behind the model and a resumed run
    (start > 0) first re-predicts `smoothing.behind` frames before `start` as context, so its
    smoothed values equal an uninterrupted run's. KeyboardInterrupt stops it after the last
    whole batch written; the sink holds frames start … its last row.

    A multi-instance model (video_instances.is_multi_instance) goes through
    video_instances.predict_video_instances instead, which links its instances into tracks
    (`animals`: how many there are, if known; `earlier`, `next_track`: what a resumed run
    read back of its partial file); the single-instance path below is unchanged."""
    from kpstudio.ml.video_instances import is_multi_instance, predict_video_instances

    if is_multi_instance(predictor):
        return predict_video_instances(
            predictor, info, sink, start=start, smoothing=smoothing, labeled=labeled,
            batch_size=batch_size, progress=progress, animals=animals, earlier=earlier,
            next_track=next_track,
        )  # fmt: skip
    times = StageTimes()
    t_start = time.perf_counter()
    box, canvas_h, canvas_w = video_letterbox(predictor, info.width, info.height)
    first = max(0, start - smoothing.behind) if smoothing else start
    smoother = StreamingSmoother(smoothing, first, start - first) if smoothing else None
    reader = FrameReader(
        info, first, box, canvas_h, canvas_w, batch_size, labeled is not None, times
    )
    renderer = Renderer(labeled, times) if labeled is not None else None
    pending = _Pending()  # raw rows (and frames to draw) waiting for their smoothed values
    offset = np.array([box.pad_x, box.pad_y], np.float64)
    scale = np.array([box.scale_x, box.scale_y], np.float64)
    run = None

    def prepare():  # while the reader decodes the first frames
        nonlocal run
        run, times.runtime = make_runner(predictor, canvas_h, canvas_w, batch_size, runtime)
        times.setup = time.perf_counter() - t_start

    def on_batch(index, batch, frames) -> int:
        t1 = time.perf_counter()
        out = run(batch)
        t2 = time.perf_counter()
        times.inference += t2 - t1
        xy = (out[..., :2].astype(np.float64) - offset) / scale
        conf = out[..., 2].astype(np.float64)
        _emit(pending, smoother, sink, renderer, index, xy, conf, frames)
        times.frames += len(batch) - max(0, min(len(batch), start - index))
        times.write += time.perf_counter() - t2
        return len(batch)

    def on_end():  # the last frames, now that nothing comes after them
        if smoother is not None:
            _emit(pending, smoother, sink, renderer, None, None, None, None)

    return run_stages(reader, renderer, times, t_start, sink, info.frames, progress, on_batch,
                      prepare, on_end)  # fmt: skip


class _Pending:
    """Raw rows from `first` on, not yet written."""

    def __init__(self):
        self.first = 0  # frame index of the first row held
        self.pushed = 0  # rows before this frame index went to the smoother already
        self.xy = self.conf = None
        self.frames: list = []


def _emit(pending, smoother, sink, renderer, index, xy, conf, frames) -> None:
    """Hand new rows (xy None: the end of the video) to the sink, through the smoother if any."""
    if smoother is None:  # rows go out as they come (a resumed run starts right at `start`)
        _write(sink, renderer, np.arange(index, index + len(xy)), xy, conf, None, frames)
        return
    final = xy is None
    if not final:
        if pending.xy is None:
            pending.first = pending.pushed = index
            pending.xy, pending.conf = xy, conf
        else:
            pending.xy = np.concatenate([pending.xy, xy])
            pending.conf = np.concatenate([pending.conf, conf])
        pending.frames += frames if frames is not None else []
    if pending.xy is None:
        return
    end = pending.first + len(pending.xy)
    # The smoother re-fits its whole window on each push: feed it SMOOTH_CHUNK frames at a
    # time, not every small batch.
    if not final and end - pending.pushed < SMOOTH_CHUNK:
        return
    new = slice(pending.pushed - pending.first, None)
    got_first, smooth = smoother.push(pending.xy[new], pending.conf[new], final=final)
    pending.pushed = end
    if not len(smooth):
        return
    lo, hi = got_first - pending.first, got_first - pending.first + len(smooth)
    drawn = pending.frames[lo:hi] if pending.frames else None
    rows = np.arange(got_first, got_first + len(smooth))
    _write(sink, renderer, rows, pending.xy[lo:hi], pending.conf[lo:hi], smooth, drawn)
    pending.xy, pending.conf = pending.xy[hi:], pending.conf[hi:]
    pending.frames = pending.frames[hi:]
    pending.first = got_first + len(smooth)


def _write(sink, renderer, rows, xy, conf, smooth, frames) -> None:
    if not len(rows):
        return
    sink.write(rows, np.zeros(len(rows), np.int64), xy, conf, smooth)
    if renderer is not None and frames is not None:
        shown = xy if smooth is None else np.where(np.isfinite(smooth), smooth, xy)
        renderer.queue.put((frames, shown, conf))


class ArraySink(Sink):
    """Collects rows into (T, K, 2) / (T, K) arrays, grown a batch at a time (for scoring a
    whole video: a few dozen bytes per frame)."""

    def __init__(self):
        self.parts: list[tuple[np.ndarray, np.ndarray]] = []

    def write(self, frames, instances, xy, conf, smooth) -> None:
        self.parts.append((np.asarray(xy, np.float32), np.asarray(conf, np.float32)))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.parts:
            return np.zeros((0, 0, 2), np.float32), np.zeros((0, 0), np.float32)
        return (
            np.concatenate([p[0] for p in self.parts]),
            np.concatenate([p[1] for p in self.parts]),
        )
