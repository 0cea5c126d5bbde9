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
from kpstudio.core.tracks import track_arrays


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

    @classmethod
    def from_tracks(cls, run_id: str, start: int, upto: int, k: int, frame, track, xy, conf,
                    score) -> VideoPredictions:  # fmt: skip
        """From rows of several animals per frame (kpstudio.ml's TrackArraySink) covering frames
        start … upto - 1: instance n of a frame is the animal of track id n, so an animal keeps
        its slot (and colour) from frame to frame (kpstudio.core.tracks.track_arrays)."""
        frame = np.asarray(frame, np.int64) - start
        return cls(run_id, *track_arrays(max(0, upto - start), k, frame, track, xy, conf, score))

    def track_rows(self, lo: int, hi: int) -> list[tuple]:
        """Rows (frame, track, xy, conf, score) of the animals found on frames lo … hi - 1: what
        a resumed several-animal run replays into its tracker, so the ids go on."""
        rows = []
        for f in range(max(0, lo), min(hi, self.frames)):
            for n in np.flatnonzero(np.isfinite(self.score[f])):
                rows.append((f, int(n), self.xy[f, n].astype(np.float64),
                             self.confidence[f, n].astype(np.float64), float(self.score[f, n])))
        return rows

    @property
    def instances(self) -> int:
        """Instance slots per frame (N): 1 for one animal, else the track ids used so far."""
        return self.xy.shape[1]

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
        """These frames followed by `more` (a resumed prediction of the frames after them); a
        resumed run may have found animals with new track ids, so both get as many slots."""
        n = max(self.instances, more.instances)
        a, b = self.padded(n), more.padded(n)
        return VideoPredictions(
            self.run_id,
            np.concatenate([a.xy, b.xy]),
            np.concatenate([a.confidence, b.confidence]),
            np.concatenate([a.score, b.score]),
        )

    def padded(self, n: int) -> VideoPredictions:
        """The same answers with n instance slots (the new ones empty)."""
        extra = n - self.instances
        if extra <= 0:
            return self

        def pad(array):
            shape = (array.shape[0], extra) + array.shape[2:]
            return np.concatenate([array, np.full(shape, np.nan, np.float32)], axis=1)

        return VideoPredictions(self.run_id, pad(self.xy), pad(self.confidence), pad(self.score))
