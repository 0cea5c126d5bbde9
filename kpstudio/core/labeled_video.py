"""A labeled video: the skeleton and points drawn on every frame, faded by confidence.

Written with OpenCV's VideoWriter at the source's size and frame rate, one output frame per
source frame. Drawing blends only the small rectangle around each point or bone, so a frame
costs a few small copies, not a full-frame blend.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from kpstudio.core.skeleton import Skeleton

# Codecs OpenCV's pip wheels can write without extra libraries.
FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}
SHIFT = 4  # cv2 draws at 1/16 px: sub-pixel positions stay sub-pixel


class LabeledVideoWriter:
    def __init__(self, path: Path, skeleton: Skeleton, fps: float, width: int, height: int):
        self.path = Path(path)
        fourcc = FOURCC.get(self.path.suffix.lower())
        if fourcc is None:
            given = self.path.suffix or "no suffix"
            raise ValueError(
                f"{self.path}: a labeled video is written as {', '.join(FOURCC)}, not {given}"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fps = fps if math.isfinite(fps) and fps > 0 else 30.0
        self.writer = cv2.VideoWriter(
            str(self.path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height)
        )
        if not self.writer.isOpened():
            raise OSError(f"{self.path}: OpenCV cannot write a {fourcc} video here")
        self.frames = 0
        # Sizes follow the frame, so a 4K video and a 320 px one both look drawn alike.
        self.radius = max(2, round(min(width, height) / 80))
        self.thickness = max(1, self.radius // 2)
        self.colors = [_bgr(c) for c in skeleton.colors]
        index = {n: i for i, n in enumerate(skeleton.keypoints)}
        self.edges = [(index[a], index[b]) for a, b in skeleton.edges]

    def write(self, frame: np.ndarray, xy: np.ndarray, conf: np.ndarray) -> None:
        """Draw one instance's points xy (K, 2) (NaN: not drawn) with alpha = confidence on the
        BGR frame (in place) and append it."""
        self.draw(frame, xy, conf)
        self.append(frame)

    def write_all(self, frame: np.ndarray, xy: np.ndarray, conf: np.ndarray, labels=None) -> None:
        """Draw every instance of a frame, xy (n, K, 2) and conf (n, K) (n may be 0), each with
        its label above it if given (a track id: who is who can be checked by eye), and
        append it once."""
        for i, (points, confidence) in enumerate(zip(xy, conf)):
            self.draw(frame, points, confidence)
            if labels is not None:
                self._label(frame, points, str(labels[i]))
        self.append(frame)

    def _label(self, frame: np.ndarray, xy: np.ndarray, text: str) -> None:
        pts = np.asarray(xy, np.float64)
        pts = pts[np.isfinite(pts).all(axis=1)]
        if not len(pts):
            return
        top = pts[np.argmin(pts[:, 1])]
        scale = self.radius / 6.0  # the text follows the frame's size, as the points do
        at = (int(top[0]) - self.radius, int(top[1]) - 2 * self.radius)
        for color, width in (((0, 0, 0), self.thickness + 2), ((255, 255, 255), self.thickness)):
            cv2.putText(frame, text, at, cv2.FONT_HERSHEY_SIMPLEX, scale, color, width, cv2.LINE_AA)

    def append(self, frame: np.ndarray) -> None:
        self.writer.write(frame)
        self.frames += 1

    def draw(self, frame: np.ndarray, xy: np.ndarray, conf: np.ndarray) -> None:
        """Draw one instance on the BGR frame, in place."""
        h, w = frame.shape[:2]
        pts = np.asarray(xy, np.float64) - 0.5  # pixel corners → cv2's pixel centres
        alpha = np.clip(np.nan_to_num(np.asarray(conf, np.float64)), 0.0, 1.0)
        ok = np.isfinite(pts).all(axis=1)
        for a, b in self.edges:
            if ok[a] and ok[b]:
                bone = pts[[a, b]]
                self._blend(frame, w, h, bone, min(alpha[a], alpha[b]), self.colors[a], self._line)
        for k in np.flatnonzero(ok):
            self._blend(frame, w, h, pts[[k]], alpha[k], self.colors[k], self._dot)

    def _line(self, roi: np.ndarray, p: list, color: tuple) -> None:
        cv2.line(roi, p[0], p[1], color, self.thickness, cv2.LINE_AA, SHIFT)

    def _dot(self, roi: np.ndarray, p: list, color: tuple) -> None:
        # A white rim keeps a dark colour visible on a dark animal.
        cv2.circle(roi, p[0], self.radius << SHIFT, color, -1, cv2.LINE_AA, SHIFT)
        cv2.circle(roi, p[0], self.radius << SHIFT, (255, 255, 255), 1, cv2.LINE_AA, SHIFT)

    def _blend(self, frame, w, h, pts, alpha, color, draw) -> None:
        if alpha <= 0:
            return
        pad = self.radius + self.thickness + 1
        x0 = max(0, int(pts[:, 0].min()) - pad)
        y0 = max(0, int(pts[:, 1].min()) - pad)
        x1 = min(w, int(pts[:, 0].max()) + pad + 1)
        y1 = min(h, int(pts[:, 1].max()) + pad + 1)
        if x0 >= x1 or y0 >= y1:
            return  # entirely outside the frame
        roi = frame[y0:y1, x0:x1]
        drawn = roi.copy()
        fixed = [(round((x - x0) * (1 << SHIFT)), round((y - y0) * (1 << SHIFT))) for x, y in pts]
        draw(drawn, fixed, color)
        cv2.addWeighted(drawn, float(alpha), roi, 1.0 - float(alpha), 0.0, dst=roi)

    def close(self) -> None:
        self.writer.release()


def _bgr(hex_color: str) -> tuple[int, int, int]:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return (b, g, r)
