"""A whole video's predictions as the player holds them: per frame, every instance found.

Arrays, not objects per frame: a 2-hour video at 30 fps is 216,000 frames, and the player
must draw any one of them at once and plot the mean confidence of all of them. Instances are an
axis from the start (N = 1 for a single-instance model), so a model that finds several animals
fills the same arrays; a missing instance is all NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kpstudio.core.prediction_files import Prediction


@dataclass
class VideoPredictions:
    run_id: str
    xy: np.ndarray  # (T, N, K, 2) float32 video pixels, pixel-corner convention; NaN: none
    confidence: np.ndarray  # (T, N, K) float32
    score: np.ndarray  # (T, N) float32: how sure the model is the instance is there; NaN: none

    @classmethod
    def single(cls, run_id: str, xy: np.ndarray, confidence: np.ndarray) -> VideoPredictions:
        """From one instance per frame: xy (T, K, 2), confidence (T, K) (kpstudio.ml's
        ArraySink)."""
        xy = np.asarray(xy, np.float32).reshape(len(xy), 1, -1, 2)
        confidence = np.asarray(confidence, np.float32).reshape(len(xy), 1, -1)
        return cls(run_id, xy, confidence, np.ones((len(xy), 1), np.float32))

    @property
    def frames(self) -> int:
        """Frames predicted: 0 … frames - 1."""
        return len(self.xy)

    def covers(self, index: int) -> bool:
        return 0 <= index < self.frames

    def at(self, index: int) -> list[Prediction]:
        """The instances found on frame `index` (none when not predicted)."""
        if not self.covers(index):
            return []
        found = []
        for n in range(self.xy.shape[1]):
            if np.isfinite(self.score[index, n]):
                found.append(Prediction(None, self.xy[index, n].astype(np.float64),
                                        self.confidence[index, n].astype(np.float64), n,
                                        float(self.score[index, n])))  # fmt: skip
        return found

    def mean_confidence(self) -> np.ndarray:
        """(T,) mean keypoint confidence of each frame over its instances; NaN where none."""
        conf = self.confidence.reshape(self.frames, -1)
        counts = np.isfinite(conf).sum(axis=1)
        sums = np.nansum(conf, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)

    def extended(self, more: VideoPredictions) -> VideoPredictions:
        """These frames followed by `more` (a resumed prediction of the frames after them)."""
        return VideoPredictions(
            self.run_id,
            np.concatenate([self.xy, more.xy]),
            np.concatenate([self.confidence, more.confidence]),
            np.concatenate([self.score, more.score]),
        )
