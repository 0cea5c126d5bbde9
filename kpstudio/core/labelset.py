"""LabelSet: a whole labeled dataset in memory, the currency between file formats and the store.

Importers parse and validate a file into a LabelSet without touching any project; the store
then writes it in one transaction. Exporters read a LabelSet out of the store. Keeping formats
pure this way means a refused file can never leave a half-imported project behind.

Coordinates are image pixels with the origin at the top-left corner of the top-left pixel
(so a pixel's centre is at i + 0.5), in the orientation the user sees (EXIF applied).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path, PurePosixPath

import numpy as np

from kpstudio.core.skeleton import Skeleton


class Visibility(IntEnum):
    """Same numbers as COCO's v: 0 not labeled / absent, 1 labeled but occluded, 2 visible."""

    ABSENT = 0
    OCCLUDED = 1
    VISIBLE = 2


class LabelError(ValueError):
    """A label or an annotation file is invalid; the message names the file and the entry."""


# Out-of-image coordinates by at most this much (sub-pixel rounding by other tools) are clamped
# onto the image edge with a warning; anything further out is refused.
EDGE_TOLERANCE_PX = 1.0


@dataclass
class Instance:
    """One animal / person on an image: xy (K, 2) float64 and visibility (K,) int8.

    Absent keypoints have NaN coordinates, so they can never be mistaken for a point at (0, 0).
    """

    xy: np.ndarray
    visibility: np.ndarray

    @classmethod
    def empty(cls, k: int) -> Instance:
        return cls(np.full((k, 2), np.nan), np.zeros(k, dtype=np.int8))

    def labeled(self) -> np.ndarray:
        return self.visibility > 0


@dataclass
class ImageEntry:
    """An image of the set: its path relative to the set's root (POSIX form) and its size."""

    path: str
    width: int
    height: int
    instances: list[Instance] = field(default_factory=list)
    split: str | None = None  # "train" / "val" where the source file says so
    # The image's own bytes when the annotation file carried them (labelme imageData) and no
    # image file exists at `path`; the store writes them into the project.
    data: bytes | None = field(default=None, repr=False)


@dataclass
class LabelSet:
    skeleton: Skeleton
    root: Path  # folder the image paths are relative to
    images: list[ImageEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def labeled_images(self) -> int:
        return sum(any(inst.labeled().any() for inst in im.instances) for im in self.images)


def safe_relative_path(raw: str, root: Path, where: str) -> str:
    """Normalise an image path from a file; refuse anything that escapes `root`.

    Absolute paths are accepted only when they lie inside root. Backslashes (Windows tools)
    are treated as separators.
    """
    text = str(raw).replace("\\", "/").strip()
    if not text:
        raise LabelError(f"{where}: empty image path")
    if "\x00" in text:
        raise LabelError(f"{where}: image path contains a NUL character")
    root_resolved = root.resolve()
    candidate = Path(text)
    if candidate.is_absolute() or PurePosixPath(text).is_absolute() or _has_drive(text):
        full = Path(text).resolve()
        try:
            return full.relative_to(root_resolved).as_posix()
        except ValueError:
            raise LabelError(
                f"{where}: image path {raw!r} is outside the import folder {root}"
            ) from None
    parts = []
    for part in PurePosixPath(text).parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise LabelError(f"{where}: image path {raw!r} escapes the import folder {root}")
            parts.pop()
        else:
            parts.append(part)
    if not parts:
        raise LabelError(f"{where}: image path {raw!r} names no file")
    rel = PurePosixPath(*parts).as_posix()
    # A symlink inside root may still point outside it.
    resolved = (root_resolved / rel).resolve()
    if resolved.exists():
        try:
            resolved.relative_to(root_resolved)
        except ValueError:
            raise LabelError(
                f"{where}: image path {raw!r} leads outside the import folder {root}"
            ) from None
    return rel


def _has_drive(text: str) -> bool:
    return len(text) > 1 and text[1] == ":" and text[0].isalpha()


def check_point(
    x: float, y: float, width: int, height: int, where: str, warnings: list[str] | None,
    tolerance: float = EDGE_TOLERANCE_PX,
) -> tuple[float, float]:  # fmt: skip
    """Validate one labeled coordinate against its image; returns it, clamped if barely out.

    Files from other tools get `tolerance` px of slack; the studio's own edits get none."""
    try:
        x, y = float(x), float(y)
    except (TypeError, ValueError):
        raise LabelError(f"{where}: coordinate ({x!r}, {y!r}) is not a number") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise LabelError(f"{where}: coordinate ({x}, {y}) is not finite")
    inside_x = -tolerance <= x <= width + tolerance
    inside_y = -tolerance <= y <= height + tolerance
    if not (inside_x and inside_y):
        raise LabelError(f"{where}: point ({x:g}, {y:g}) lies outside the {width}×{height} image")
    cx, cy = min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height))
    if (cx, cy) != (x, y) and warnings is not None:
        warnings.append(f"{where}: point ({x:g}, {y:g}) clamped onto the image edge")
    return cx, cy
