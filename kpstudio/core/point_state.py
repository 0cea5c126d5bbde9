"""What one keypoint of one instance holds on an image, as the studio's edits and undo steps
carry it: a position and visibility, or (None) no label yet."""

from __future__ import annotations

import math
from dataclasses import dataclass

from kpstudio.core.labelset import Visibility


@dataclass(frozen=True)
class PointState:
    """A labeled point: position in image pixels (NaN when absent), visibility, source."""

    x: float
    y: float
    visibility: Visibility
    source: str = "manual"

    @classmethod
    def absent(cls) -> PointState:
        """The decision 'this keypoint is not on the image' (no position)."""
        return cls(math.nan, math.nan, Visibility.ABSENT)


# (instance, keypoint name) → the point it should hold, None for no label
PointChanges = dict[tuple[int, str], PointState | None]
