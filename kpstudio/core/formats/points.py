"""Numbers read from annotation files, and boxes written around keypoints.

Every importer checks numbers while parsing, before it looks at any image, so a NaN anywhere in
a file is refused even on an image that later turns out to be missing and skipped.
"""

from __future__ import annotations

import math

import numpy as np

from kpstudio.core.labelset import Instance, LabelError, Visibility
from kpstudio.core.regular_files import quote

# Exported boxes reach this far beyond the outermost keypoints (a fraction of the box's size,
# and at least BOX_MIN_PAD px), so one lone keypoint still gets a box with area for COCO's OKS.
BOX_PAD_FRACTION = 0.1
BOX_MIN_PAD = 2.0


def parse_number(value: object, where: str) -> float:
    """A finite float; LabelError for text, bools, NaN and infinities."""
    if isinstance(value, bool) or value is None:
        raise LabelError(f"{where}: {quote(value)} is not a number")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise LabelError(f"{where}: {quote(value)} is not a number") from None
    except OverflowError:  # an integer beyond any float
        raise LabelError(f"{where}: {quote(value)} is too large to be a coordinate") from None
    if not math.isfinite(number):
        raise LabelError(f"{where}: coordinate {quote(value)} is not finite")
    return number


def parse_visibility(value: object, where: str) -> Visibility:
    """COCO's v: 0, 1 or 2, written as an int or an integral float ("2.0")."""
    number = parse_number(value, where)
    if number not in (0.0, 1.0, 2.0):
        raise LabelError(f"{where}: visibility {quote(value)} is not 0, 1 or 2")
    return Visibility(int(number))


def keypoint_box(inst: Instance, width: int, height: int) -> tuple[float, float, float, float]:
    """[x, y, w, h] around the labeled keypoints, padded a little and kept inside the image."""
    pts = inst.xy[inst.labeled()]
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    pad_x = max(BOX_MIN_PAD, BOX_PAD_FRACTION * (x1 - x0))
    pad_y = max(BOX_MIN_PAD, BOX_PAD_FRACTION * (y1 - y0))
    bx0, by0 = max(0.0, x0 - pad_x), max(0.0, y0 - pad_y)
    bx1, by1 = min(float(width), x1 + pad_x), min(float(height), y1 + pad_y)
    return float(bx0), float(by0), float(bx1 - bx0), float(by1 - by0)


def has_labels(inst: Instance) -> bool:
    return bool(np.any(inst.labeled()))
