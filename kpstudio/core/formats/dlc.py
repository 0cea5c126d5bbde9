"""DeepLabCut CollectedData CSV (the human-readable twin of CollectedData_<scorer>.h5).

Layout: header rows ``scorer``, optionally ``individuals`` (multi-animal projects), ``bodyparts``
and ``coords`` (x / y, plus ``likelihood`` in machine-made files, ignored); then one row per
image. The image path is in the first column, or — newer DeepLabCut — split over three index
columns (``labeled-data``, ``video``, ``img.png``). Empty cells (pandas' NaN) are absent points.

Conventions:
- Coordinates: DeepLabCut uses pixel-index coordinates (an integer is a pixel's centre), so
  ours = dlc + 0.5 on import and dlc = ours − 0.5 on export.
- Visibility: DeepLabCut has none. A point with coordinates is VISIBLE; on export an OCCLUDED
  point is written like any labeled point and comes back VISIBLE (the one loss of a round trip).
- Instances: one per row (single animal) or per individual with at least one labeled point;
  an all-empty row is an image without labels. Multi-animal "unique" bodyparts (individual
  ``single``) are refused: they belong to no animal, and a kpstudio skeleton is one per instance.
- Left/right pairs are inferred from the bodypart names (leftear/rightear).
- Cells a spreadsheet would run as formulas are written with a leading ' and read back
  without it (formats.spreadsheet).
- Export: scorer ``kpstudio``; the ``individuals`` row only when some image has more than one
  instance; one path column holding ImageEntry.path.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kpstudio.core.formats.files import output_file, read_text, write_text
from kpstudio.core.formats.image_paths import (
    ImageRef,
    check_unique,
    handle_missing,
    image_size,
    locate_images,
)
from kpstudio.core.formats.naming import infer_flip_pairs
from kpstudio.core.formats.points import has_labels, parse_number
from kpstudio.core.formats.spreadsheet import csv_cell, read_csv_cell
from kpstudio.core.labelset import (
    ImageEntry,
    Instance,
    LabelError,
    LabelSet,
    Visibility,
    check_point,
)
from kpstudio.core.limits import MAX_INSTANCES_PER_IMAGE
from kpstudio.core.regular_files import quote
from kpstudio.core.skeleton import Skeleton, SkeletonError, normalise_name

SHIFT = 0.5  # DeepLabCut's pixel-index coordinates sit half a pixel before ours
SCORER = "kpstudio"
UNIQUE_INDIVIDUAL = "single"


@dataclass
class _Layout:
    header_rows: int
    n_index: int  # columns holding the image path (1, or 3 in newer DeepLabCut)
    individuals: list[str]  # [""] for a single-animal file
    bodyparts: list[str]
    xy: dict[tuple[str, str], tuple[int, int]]  # (individual, bodypart) → x and y columns
    width: int  # cells a row may have


def read(file: Path, images_root: Path | None = None, skip_missing: bool = False) -> LabelSet:
    """Parse and validate a DeepLabCut CollectedData CSV into a LabelSet."""
    file = Path(file)
    try:
        rows = list(csv.reader(io.StringIO(read_text(file))))
    except csv.Error as exc:
        raise LabelError(f"{file}: malformed CSV: {exc}") from None
    layout = _layout(rows, file)
    try:
        skeleton = Skeleton.create(layout.bodyparts, (), infer_flip_pairs(layout.bodyparts))
    except SkeletonError as exc:
        raise LabelError(f"{file}: bodyparts: {exc}") from None

    # Parse every row before touching any image (a bad number anywhere refuses the file).
    refs: list[ImageRef] = []
    parsed: list[list[tuple[np.ndarray, list[str]]]] = []
    for line, row in enumerate(rows[layout.header_rows :], start=layout.header_rows + 1):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{file}: row {line}"
        if any(c.strip() for c in row[layout.width :]):
            raise LabelError(f"{where}: more cells than the header has columns")
        cells = row + [""] * (layout.width - len(row))  # pandas leaves trailing NaNs out
        path = "/".join(read_csv_cell(c.strip()) for c in cells[: layout.n_index] if c.strip())
        if not path:
            raise LabelError(f"{where}: no image path")
        refs.append(ImageRef(path, f"{where} ({quote(path)})"))
        parsed.append(_row_points(cells, layout, skeleton, where))

    root, located = locate_images(file, images_root, refs)
    check_unique(located, refs)
    warnings: list[str] = []
    keep = handle_missing(file, root, located, skip_missing, warnings)
    out = LabelSet(skeleton, root, warnings=warnings)
    for ref, loc, animals, kept in zip(refs, located, parsed, keep):
        if not kept:
            continue
        width, height = image_size(root, loc.found, ref.where)
        entry = ImageEntry(loc.found, width, height)
        for xy, wheres in animals:
            inst = Instance.empty(len(skeleton))
            for j in np.flatnonzero(~np.isnan(xy[:, 0])):
                inst.xy[j] = check_point(*xy[j], width, height, wheres[j], warnings)
                inst.visibility[j] = Visibility.VISIBLE
            entry.instances.append(inst)
        out.images.append(entry)
    return out


def _layout(rows: list[list[str]], file: Path) -> _Layout:
    keys = [r[0].strip().lower() if r else "" for r in rows[:4]]
    if keys[:1] != ["scorer"]:
        raise LabelError(f"{file}: not a DeepLabCut CSV (the first row must start with 'scorer')")
    multi = keys[1:2] == ["individuals"]
    names = (
        ["scorer", "individuals", "bodyparts", "coords"]
        if multi
        else ["scorer", "bodyparts", "coords"]
    )
    if keys[: len(names)] != names:
        raise LabelError(
            f"{file}: the header rows must be {', '.join(names)}; found {', '.join(keys)}"
        )
    coords, bodyparts = rows[len(names) - 1], rows[len(names) - 2]
    inds = rows[1] if multi else []
    first = next((i for i, c in enumerate(coords) if i and c.strip()), None)
    if first is None:
        raise LabelError(f"{file}: the coords row names no x/y columns")
    slots: dict[tuple[str, str], dict[str, int]] = {}
    for col in range(first, len(coords)):
        coord = coords[col].strip().lower()
        if coord == "likelihood":  # machine-labeled files; a confidence is not a label
            continue
        cell = bodyparts[col] if col < len(bodyparts) else ""
        bp = normalise_name(read_csv_cell(cell.strip()))
        ind = read_csv_cell((inds[col] if col < len(inds) else "").strip())
        if coord not in ("x", "y") or not bp:
            raise LabelError(f"{file}: column {col + 1}: cannot read bodypart {cell!r} / {coord!r}")
        slot = slots.setdefault((ind, bp), {})
        if coord in slot:
            raise LabelError(f"{file}: column {col + 1}: bodypart {bp!r} has two {coord} columns")
        slot[coord] = col
    unique = sorted({bp for ind, bp in slots if ind.lower() == UNIQUE_INDIVIDUAL})
    if unique:
        raise LabelError(
            f"{file}: unique bodyparts ({', '.join(unique)}, individual '{UNIQUE_INDIVIDUAL}') "
            "belong to no animal and cannot share a skeleton with the animals' bodyparts; "
            "remove those columns (or import them as a separate single-animal CSV)"
        )
    if len({ind for ind, _ in slots}) > MAX_INSTANCES_PER_IMAGE:
        raise LabelError(f"{file}: more than {MAX_INSTANCES_PER_IMAGE} individuals")
    xy = {}
    for (ind, bp), slot in slots.items():
        if set(slot) != {"x", "y"}:
            raise LabelError(f"{file}: bodypart {bp!r} {ind or ''} lacks an x or a y column")
        xy[ind, bp] = (slot["x"], slot["y"])
    return _Layout(
        header_rows=len(names),
        n_index=first,
        individuals=list(dict.fromkeys(ind for ind, _ in xy)),
        bodyparts=list(dict.fromkeys(bp for _, bp in xy)),
        xy=xy,
        width=len(coords),
    )


def _row_points(
    cells: list[str], layout: _Layout, skeleton: Skeleton, where: str
) -> list[tuple[np.ndarray, list[str]]]:
    """Per individual with a labeled point: (xy K×2 in our convention, where per keypoint)."""
    out = []
    for ind in layout.individuals:
        xy = np.full((len(skeleton), 2), np.nan)
        wheres = [""] * len(skeleton)
        for j, name in enumerate(skeleton.keypoints):
            if (ind, name) not in layout.xy:
                continue
            at = where + (f" individual {ind!r}" if ind else "") + f" bodypart {name!r}"
            raw = [cells[c].strip() for c in layout.xy[ind, name]]
            # Empty is how pandas writes NaN; a literal "nan" is the same missing point.
            present = [v != "" and v.lower() != "nan" for v in raw]
            if not any(present):
                continue
            if not all(present):
                raise LabelError(f"{at}: only one of x and y is given ({raw[0]!r}, {raw[1]!r})")
            x, y = (parse_number(v, at) for v in raw)
            xy[j] = (x + SHIFT, y + SHIFT)
            wheres[j] = at
        if not np.isnan(xy[:, 0]).all():
            out.append((xy, wheres))
    return out


def write(labels: LabelSet, out: Path) -> list[Path]:
    """Write a CollectedData CSV (`out` a .csv path, or a folder for CollectedData_kpstudio.csv)."""
    path = output_file(Path(out), ".csv", f"CollectedData_{SCORER}.csv")
    names = labels.skeleton.keypoints
    per_image = [[i for i in e.instances if has_labels(i)] for e in labels.images]
    n = max([len(insts) for insts in per_image] + [1])
    buffer = io.StringIO()
    w = csv.writer(buffer, lineterminator="\n")
    w.writerow(["scorer"] + [SCORER] * (2 * len(names) * n))
    names = [csv_cell(name) for name in names]  # a name starting with = is text, not a formula
    if n > 1:
        w.writerow(
            ["individuals"] + [f"individual{i + 1}" for i in range(n) for _ in names for _ in "xy"]
        )
    w.writerow(["bodyparts"] + [name for _ in range(n) for name in names for _ in "xy"])
    w.writerow(["coords"] + ["x", "y"] * (len(names) * n))
    for entry, insts in zip(labels.images, per_image):
        cells = [csv_cell(entry.path)]
        for i in range(n):
            for j in range(len(names)):
                if i < len(insts) and insts[i].visibility[j] > 0:
                    cells += [_number(v - SHIFT) for v in insts[i].xy[j]]
                else:
                    cells += ["", ""]
        w.writerow(cells)
    return [write_text(path, buffer.getvalue())]


def _number(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
