"""Letterboxing: fit an image into a square model input, aspect kept, padding recorded.

The model sees the image scaled by `scale` and placed at (`pad_x`, `pad_y`) in a `size`×`size`
canvas. Points map between the two with one multiply-add, in our pixel-corner convention, so a
prediction in model-input pixels maps back to the original image exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Letterbox:
    scale_x: float  # resized width / original width (equal to scale_y up to rounding)
    scale_y: float
    pad_x: int
    pad_y: int
    size: int

    def to_input(self, points: np.ndarray) -> np.ndarray:
        """Original image pixels → model input pixels (works on any (..., 2) array)."""
        pts = np.asarray(points, dtype=np.float64)
        return pts * np.array([self.scale_x, self.scale_y]) + np.array([self.pad_x, self.pad_y])

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """Model input pixels → original image pixels."""
        pts = np.asarray(points, dtype=np.float64)
        return (pts - np.array([self.pad_x, self.pad_y])) / np.array([self.scale_x, self.scale_y])


def letterbox_for(width: int, height: int, size: int) -> Letterbox:
    """The letterbox that fits a width×height image into size×size, centred."""
    new_w, new_h = _resized_size(width, height, size)
    # Integer padding keeps the resized pixels aligned with the canvas grid.
    return Letterbox(new_w / width, new_h / height, (size - new_w) // 2, (size - new_h) // 2, size)


def _resized_size(width: int, height: int, size: int) -> tuple[int, int]:
    scale = size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def letterbox_image(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """HxWx3 uint8 → size×size×3 uint8 (black padding) and its Letterbox."""
    h, w = image.shape[:2]
    box = letterbox_for(w, h, size)
    new_w, new_h = _resized_size(w, h, size)
    # INTER_AREA when shrinking avoids aliasing. cv2.resize maps pixel corners to corners,
    # which is exactly our convention: a point at x lands at x * new_w / w.
    interp = cv2.INTER_AREA if new_w < w else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interp)
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    x0, y0 = int(box.pad_x), int(box.pad_y)
    canvas[y0 : y0 + new_h, x0 : x0 + new_w] = resized
    return canvas, box
