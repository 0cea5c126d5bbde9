"""The threads of video prediction and the loop between them, shared by the single-animal
(video_predict) and several-animal (video_instances) paths.

Three threads overlap: a reader decodes (and letterboxes) frames into batches (OpenCV lets go
of the GIL), the caller's thread runs the model and writes rows (run_stages), and a renderer
draws and encodes the labeled video. Bounded queues between them keep memory flat however
long the video.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from kpstudio.core.labeled_video import LabeledVideoWriter
from kpstudio.core.letterbox import Letterbox
from kpstudio.core.video_frames import VideoError, VideoInfo, open_at

QUEUE_FRAMES = 64  # frames decoded (and waiting to be drawn) ahead: hides decoding's jitter
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


class Sink:
    """Where rows go: write(frames, instances, xy, conf, smooth); checkpoint() between batches."""

    def write(self, frames, instances, xy, conf, smooth) -> None:
        raise NotImplementedError

    def checkpoint(self) -> None:
        pass


def run_stages(reader: FrameReader, renderer: Renderer | None, times: StageTimes,
               t_start: float, sink: Sink, total: int, progress, on_batch, prepare=None,
               on_end=None) -> StageTimes:  # fmt: skip
    """The model's thread between the reader and the renderer: starts both, runs `prepare()`
    (converting the model while the first frames decode), hands each decoded batch to
    `on_batch(first index, letterboxed batch, frames)` (it runs the model and writes the rows,
    and returns how many frames the batch holds), brings the sink's sidecar up to date every
    CHECKPOINT_SECONDS, reports progress, runs `on_end()` after the last batch, and stops both
    threads however it ends."""
    reader.start()
    if renderer is not None:
        renderer.start()
    try:
        if prepare is not None:
            prepare()
        last_checkpoint = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            item = reader.queue.get()
            times.wait += time.perf_counter() - t0
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                break
            index = item[0]
            n = on_batch(*item)
            if time.perf_counter() - last_checkpoint > CHECKPOINT_SECONDS:
                t1 = time.perf_counter()
                sink.checkpoint()
                last_checkpoint = time.perf_counter()
                times.write += last_checkpoint - t1
            if progress is not None:
                progress(index + n, max(total, index + n))
        if on_end is not None:
            on_end()
    finally:
        reader.stop()
        reader.join()
        if renderer is not None:
            renderer.finish()
        times.wall = time.perf_counter() - t_start
    return times
