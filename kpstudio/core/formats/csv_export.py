"""Plain CSV export: one row per labeled keypoint, for spreadsheets and pandas.

Columns (header row first):

    image       the image path relative to the dataset root, POSIX form
    instance    0-based index of the animal / person on that image
    keypoint    the keypoint name
    x, y        kpstudio's convention: pixels from the top-left CORNER of the image (a pixel's
                centre is at i + 0.5), in the orientation the user sees (EXIF applied)
    visibility  "visible" or "occluded" (absent keypoints have no row)

Text a spreadsheet would run as a formula (a name starting with = + - @) gets a leading ' (see
formats.spreadsheet).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from kpstudio.core.formats.files import output_file, write_text
from kpstudio.core.formats.spreadsheet import csv_row
from kpstudio.core.labelset import LabelSet, Visibility

HEADER = ("image", "instance", "keypoint", "x", "y", "visibility")


def write(labels: LabelSet, out: Path) -> list[Path]:
    """Write the long-format CSV (`out` a .csv path, or a folder for labels.csv)."""
    path = output_file(Path(out), ".csv", "labels.csv")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    names = labels.skeleton.keypoints
    for entry in labels.images:
        for i, inst in enumerate(entry.instances):
            for j in np.flatnonzero(inst.labeled()):
                x, y = (f"{float(v):.4f}" for v in inst.xy[j])
                word = Visibility(int(inst.visibility[j])).name.lower()
                writer.writerow(csv_row((entry.path, i, names[j], x, y, word)))
    return [write_text(path, buffer.getvalue())]
