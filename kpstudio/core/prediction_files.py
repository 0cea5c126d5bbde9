"""Predictions written as files: .json (one object per image) or .csv (one row per keypoint).

Pure file writing, with no TensorFlow, so the CLI's `predict` (fresh predictions) and the
studio's Export dialog (predictions stored in the project) share one writer and one format.
Coordinates are original image pixels, pixel-corner convention, as the labels are stored.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kpstudio.core.formats.files import write_text
from kpstudio.core.formats.spreadsheet import csv_row
from kpstudio.core.skeleton import Skeleton

PREDICTION_SUFFIXES = (".csv", ".json")
CSV_HEADER = ("image", "keypoint", "x", "y", "confidence")
# Models that find several objects per image also say which object and how sure they are of it.
CSV_HEADER_OBJECTS = ("image", "instance", "score", "keypoint", "x", "y", "confidence")


@dataclass
class Prediction:
    """Keypoints found on one image, in its original pixels."""

    path: str | None
    xy: np.ndarray  # (K, 2) float64, x then y, pixel-corner convention; NaN where missing
    confidence: np.ndarray  # (K,) float64 in [0, 1]
    # Several objects per image (top-down models): which one (0 = the most certain) and how
    # sure the model is that an object is there at all. Single-instance models: 0 and 1.0.
    instance: int = 0
    score: float = 1.0


def write_predictions(
    preds: Iterable[Prediction], skeleton: Skeleton | Sequence[str], out: str | os.PathLike,
    objects: bool = False,
) -> Path:
    """Write predictions to `out` by its suffix: .json (a list of {"image", "keypoints":
    {name: {"x", "y", "confidence"}}}) or .csv (columns image, keypoint, x, y, confidence).
    `objects` (a model that finds several objects per image, one Prediction per object): each
    JSON entry also has "instance" and "score", the CSV columns instance and score.

    A keypoint without a finite position or confidence is left out rather than written as NaN,
    which JSON cannot hold. The file appears whole or not at all (formats.files.write_text).
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in PREDICTION_SUFFIXES:
        raise ValueError(f"{out}: predictions are written as .json or .csv, "
                         f"not {suffix or 'a name without a suffix'}")  # fmt: skip
    names = list(skeleton.keypoints if isinstance(skeleton, Skeleton) else skeleton)
    # Formatted in memory first, so a bad prediction raises before any file is touched.
    if suffix == ".json":
        rows = []
        for p in preds:
            row = {"image": p.path}
            if objects:
                row.update(instance=int(p.instance), score=_finite(p.score))
            row["keypoints"] = {n: {"x": x, "y": y, "confidence": c}
                                for n, x, y, c in _points(names, p)}  # fmt: skip
            rows.append(row)
        text = json.dumps(rows, indent=1, allow_nan=False)
    else:
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer)
        writer.writerow(CSV_HEADER_OBJECTS if objects else CSV_HEADER)
        for p in preds:
            which = [int(p.instance), _finite(p.score)] if objects else []
            for n, x, y, c in _points(names, p):
                writer.writerow(csv_row([p.path or "", *which, n, x, y, c]))
        text = buffer.getvalue()
    write_text(out, text)
    return out


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _points(names: list[str], pred: Prediction):
    """(name, x, y, confidence) as plain floats for each keypoint that has all three."""
    if len(pred.xy) != len(names) or len(pred.confidence) != len(names):
        # A prediction from another skeleton would silently shift names onto wrong points.
        raise ValueError(
            f"a prediction for {pred.path or 'an image'} has {len(pred.xy)} keypoints, "
            f"the skeleton {len(names)}"
        )
    for name, (x, y), c in zip(names, pred.xy, pred.confidence):
        x, y, c = float(x), float(y), float(c)
        if math.isfinite(x) and math.isfinite(y) and math.isfinite(c):
            yield name, x, y, c
