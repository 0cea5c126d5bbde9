"""Frames of one video for the player, decoded (and, if asked, predicted) off the UI thread.

One worker thread owns the OpenCV capture. The UI thread only says which frame it wants next;
when requests come faster than frames decode (scrubbing, playback on a slow machine), the
newest request wins and the ones in between are skipped, so the picture follows the hand and
never lags behind a queue. Reading forward goes on from the capture's position (no seek); a jump
seeks (kpstudio.core.video_frames.open_at, which checks where it landed). The last frames are
kept, so stepping back does not seek from a keyframe again.

With a predictor set, the worker also runs the model on the frame before handing it over, so a
frame and its keypoints always arrive together (no prediction drawn over the wrong frame).
TensorFlow is only ever touched in that thread; this module imports none of it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QObject, Signal

from kpstudio.core.prediction_files import Prediction
from kpstudio.core.video_frames import SEQUENTIAL_GAP, open_at

KEPT_FRAMES = 24  # decoded frames kept for stepping back (640×480: ~22 MB)


class VideoFrameSource(QObject):
    """Decodes requested frames of `path` in its own thread; see the module's docstring."""

    # (index, HxWx3 uint8 RGB frame, list[Prediction] or None when no prediction was asked)
    frame_ready = Signal(int, object, object)
    failed = Signal(int, str)  # (index, a sentence naming the file and the problem)
    past_end = Signal(int)  # the video ends before this frame (its header promised more)

    def __init__(self, path: str | Path, parent: QObject | None = None):
        super().__init__(parent)
        self.path = Path(path)
        self._cond = threading.Condition()
        self._wanted: tuple[int, bool] | None = None  # (index, predict)
        self._predictor = None
        self._closed = False
        self._kept: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cap: cv2.VideoCapture | None = None
        self._pos = 0  # the frame the capture's next read() gives
        self._thread = threading.Thread(target=self._run, name="kpstudio-video-player",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def request(self, index: int, predict: bool = True) -> None:
        """Decode frame `index` (and predict it, when a predictor is set and `predict`);
        replaces a request not started yet."""
        with self._cond:
            self._wanted = (int(index), bool(predict))
            self._cond.notify()

    def set_predictor(self, predictor) -> None:
        """The model to run on each frame (a kpstudio.ml Predictor), or None for none."""
        with self._cond:
            self._predictor = predictor

    def close(self) -> None:
        """Stop the thread (after the frame it is on) and release the video."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    # -- the worker thread ---------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while self._wanted is None and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        return
                    (index, predict), self._wanted = self._wanted, None
                    predictor = self._predictor if predict else None
                try:
                    frame = self._frame(index)
                    predictions = _predict(predictor, frame) if predictor is not None else None
                except Exception as exc:  # shown to the user; the thread goes on
                    self.failed.emit(index, f"{self.path}: frame {index}: {exc}")
                    continue
                if frame is None:
                    self.past_end.emit(index)
                    continue
                self.frame_ready.emit(index, frame, predictions)
        finally:
            if self._cap is not None:
                self._cap.release()

    def _frame(self, index: int) -> np.ndarray | None:
        """Frame `index` as RGB, from the kept ones or the capture; None past the end."""
        if index in self._kept:
            self._kept.move_to_end(index)
            return self._kept[index]
        if index < 0:
            return None
        if self._cap is None or not (self._pos <= index < self._pos + SEQUENTIAL_GAP):
            # Behind the capture, or far ahead: a seek is cheaper than decoding up to it.
            if self._cap is not None:
                self._cap.release()
            self._cap, self._pos = open_at(self.path, index), index
        while self._pos < index:
            if not self._cap.grab():
                return None
            self._pos += 1
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            return None
        self._pos += 1
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        self._kept[index] = rgb
        while len(self._kept) > KEPT_FRAMES:
            self._kept.popitem(last=False)
        return rgb


def _predict(predictor, frame: np.ndarray) -> list[Prediction]:
    """Every instance the model finds on one frame (a single-instance model: one)."""
    many = getattr(predictor, "predict_instances", None)
    if many is not None:  # a model that finds several animals
        return list(many([frame])[0])
    return list(predictor.predict_arrays([frame]))
