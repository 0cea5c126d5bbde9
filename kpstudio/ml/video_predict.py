"""Keypoints on every frame of a video, streamed: decode in a thread, infer in batches, write.

Three threads overlap: a reader decodes and letterboxes frames into uint8 batches (OpenCV lets
go of the GIL), the caller's thread runs the model and writes rows, and a renderer draws and
encodes the labeled video. Bounded queues between them keep memory flat however long the video.

The model runs through kpstudio.ml.batch_runner (onnxruntime when installed). A fully
convolutional model sees the frame letterboxed to the input size's longer side but padded only
to a multiple of 32 (640×480 at input 320: 320×256, not 320×320), a fifth fewer pixels; on the
openfield val images its error was the same as the square letterbox's (2.97 vs 3.06 px), on the
video's frames the two are 0.66 px apart (median).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from kpstudio.core.labeled_video import LabeledVideoWriter
from kpstudio.core.letterbox import Letterbox
from kpstudio.core.tracks import SmoothingParams, StreamingSmoother
from kpstudio.core.video_frames import VideoError, VideoInfo, open_at
from kpstudio.ml.batch_runner import make_runner
from kpstudio.ml.predictor import Predictor

QUEUE_FRAMES = 64  # frames decoded (and waiting to be drawn) ahead: hides decoding's jitter
SMOOTH_CHUNK = 32  # frames handed to the smoother at a time
# Frames per model call. onnxruntime spent ~20% less CPU per frame at 8 than at 32 (6.6-7.4 vs
# 8.4 ms at 320×256 on 2 cores): a smaller batch's activations stay in the CPU's caches.
BATCH_SIZE = 8
CHECKPOINT_SECONDS = 1.0  # how often a partial file's sidecar is brought up to date


@dataclass
class StageTimes:
    """Seconds spent per stage (reader and renderer run in their own threads, in parallel)."""

    decode: float = 0.0
    letterbox: float = 0.0
    inference: float = 0.0
    write: float = 0.0
    render: float = 0.0
    wait: float = 0.0  # the model's thread waiting for decoded frames
    setup: float = 0.0  # making the runner (converting the model for onnxruntime)
    frames: int = 0
    wall: float = 0.0
    runtime: str = ""
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        per = 1000.0 / max(self.frames, 1)
        fps = self.frames / max(self.wall, 1e-9)
        return (
            f"{self.frames} frames in {self.wall:.1f} s ({fps:.0f} fps; {self.runtime}, set up "
            f"in {self.setup:.1f} s); "
            f"ms per frame: decode {self.decode * per:.2f}, letterbox "
            f"{self.letterbox * per:.2f}, inference {self.inference * per:.2f}, write "
            f"{self.write * per:.2f}, render {self.render * per:.2f}, waiting for frames "
            f"{self.wait * per:.2f}"
        )


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


# --- the reader and the renderer threads ---------------------------------------------------------


class _End:
    """Put on a queue after the last item (with the reader's error, if any)."""

    def __init__(self, error: BaseException | None = None):
        self.error = error


class FrameReader(threading.Thread):
    """Decodes frames from `start` and queues (first index, uint8 RGB batch, BGR frames or None).
    With box None the frames are not letterboxed (a multi-instance model crops them itself):
    the batch is empty and the frames are kept."""

    def __init__(
        self,
        info: VideoInfo,
        start: int,
        box: Letterbox | None,
        canvas_h: int,
        canvas_w: int,
        batch_size: int,
        keep_frames: bool,
        times: StageTimes,
    ):
        super().__init__(name="kpstudio-video-reader", daemon=True)
        self.info, self.start_frame, self.box = info, start, box
        self.shape = (batch_size, canvas_h, canvas_w, 3)
        self.keep_frames, self.times = keep_frames or box is None, times
        self.queue: queue.Queue = queue.Queue(maxsize=max(2, QUEUE_FRAMES // batch_size))
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            self._read()
            self._put(_End())
        except BaseException as exc:  # reported to the model's thread, which raises it
            self._put(_End(exc))

    def _put(self, item) -> None:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _read(self) -> None:
        cap = open_at(self.info.path, self.start_frame)
        index = self.start_frame
        try:
            while not self.stopped.is_set():
                batch = np.zeros(self.shape, np.uint8)
                frames = [] if self.keep_frames else None
                n = self._fill(cap, batch, frames, index)
                if n:
                    self._put((index, batch[:n], frames))
                    index += n
                if n < len(batch):
                    return
        finally:
            cap.release()

    def _fill(
        self, cap: cv2.VideoCapture, batch: np.ndarray, frames: list | None, index: int
    ) -> int:
        """Decode up to len(batch) frames into the batch's letterboxed slots; how many."""
        info, box, times = self.info, self.box, self.times
        if box is not None:
            new_w, new_h = round(info.width * box.scale_x), round(info.height * box.scale_y)
            x0, y0 = box.pad_x, box.pad_y
            interp = cv2.INTER_AREA if new_w < info.width else cv2.INTER_LINEAR  # as letterbox
        for n in range(len(batch)):
            t0 = time.perf_counter()
            ok, frame = cap.read()
            t1 = time.perf_counter()
            times.decode += t1 - t0
            if not ok:
                return n
            if frame.shape[:2] != (info.height, info.width):
                raise VideoError(
                    f"{info.path}: frame {index + n} is {frame.shape[1]}×"
                    f"{frame.shape[0]}, not {info.width}×{info.height}"
                )
            if frames is not None:
                frames.append(frame)
            if box is None:
                continue
            small = cv2.resize(frame, (new_w, new_h), interpolation=interp)
            batch[n, y0 : y0 + new_h, x0 : x0 + new_w] = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
            times.letterbox += time.perf_counter() - t1
        return len(batch)

    def stop(self) -> None:
        self.stopped.set()


class Renderer(threading.Thread):
    """Draws and encodes the labeled video from queued (frames, xy (n, K, 2), conf (n, K))."""

    def __init__(self, writer: LabeledVideoWriter, times: StageTimes):
        super().__init__(name="kpstudio-video-renderer", daemon=True)
        self.writer, self.times = writer, times
        self.queue: queue.Queue = queue.Queue(maxsize=2)  # items of one batch or smoothing chunk
        self.error: BaseException | None = None

    def run(self) -> None:
        while True:
            item = self.queue.get()
            if isinstance(item, _End):
                return
            if self.error is not None:
                continue  # keep draining so the model's thread never blocks on a full queue
            t0 = time.perf_counter()
            try:
                for frame, xy, conf in zip(*item):
                    self.writer.write(frame, xy, conf)
            except BaseException as exc:
                self.error = exc
            self.times.render += time.perf_counter() - t0

    def finish(self) -> None:
        self.queue.put(_End())
        self.join()
        self.writer.close()
        if self.error is not None:
            raise self.error


# --- the pipeline ------------------------------------------------------------------------------


class Sink:
    """Where rows go: write(frames, instances, xy, conf, smooth); checkpoint() between batches."""

    def write(self, frames, instances, xy, conf, smooth) -> None:
        raise NotImplementedError

    def checkpoint(self) -> None:
        pass


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
    reader.start()  # decoding starts while the model is being converted
    if renderer is not None:
        renderer.start()
    try:
        run, times.runtime = make_runner(predictor, canvas_h, canvas_w, batch_size, runtime)
        times.setup = time.perf_counter() - t_start
        last_checkpoint = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            item = reader.queue.get()
            t1 = time.perf_counter()
            times.wait += t1 - t0
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                break
            index, batch, frames = item
            out = run(batch)
            t2 = time.perf_counter()
            times.inference += t2 - t1
            xy = (out[..., :2].astype(np.float64) - offset) / scale
            conf = out[..., 2].astype(np.float64)
            _emit(pending, smoother, sink, renderer, index, xy, conf, frames)
            times.frames += len(batch) - max(0, min(len(batch), start - index))
            if time.perf_counter() - last_checkpoint > CHECKPOINT_SECONDS:
                sink.checkpoint()
                last_checkpoint = time.perf_counter()
            times.write += time.perf_counter() - t2
            if progress is not None:
                progress(index + len(batch), max(info.frames, index + len(batch)))
        if smoother is not None:  # the last frames, now that nothing comes after them
            _emit(pending, smoother, sink, renderer, None, None, None, None)
    finally:
        reader.stop()
        reader.join()
        if renderer is not None:
            renderer.finish()
        times.wall = time.perf_counter() - t_start
    return times


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
