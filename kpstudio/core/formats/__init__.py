"""Annotation file formats: each importer parses and validates a file into a LabelSet.

Importers and exporters are pure: they read and write files and LabelSets, never a project.
Each module's docstring states its coordinate and visibility conventions.
"""

from __future__ import annotations

from pathlib import Path

from kpstudio.core.formats import coco, csv_export, dlc, labelme, yolo
from kpstudio.core.formats.naming import infer_flip_pairs
from kpstudio.core.labelset import LabelSet

IMPORT_FORMATS = ("coco", "labelme", "dlc", "yolo")
EXPORT_FORMATS = ("coco", "labelme", "dlc", "yolo", "csv")

_READERS = {"coco": coco.read, "labelme": labelme.read, "dlc": dlc.read, "yolo": yolo.read}
_WRITERS = {
    "coco": coco.write,
    "labelme": labelme.write,
    "dlc": dlc.write,
    "yolo": yolo.write,
    "csv": csv_export.write,
}

__all__ = [
    "EXPORT_FORMATS",
    "IMPORT_FORMATS",
    "infer_flip_pairs",
    "read_labels",
    "write_labels",
]


def read_labels(
    fmt: str,
    file: Path,
    images_root: Path | None = None,
    skip_missing: bool = False,
    **options,
) -> LabelSet:
    """Parse and validate an annotation file (or labelme folder) into a LabelSet.

    `images_root` is where the images are looked for (default: the file's folder, then its
    images/ subfolder). Raises LabelError, naming the file and the entry, for anything invalid;
    missing images are an error too unless `skip_missing`, which skips them with a warning.
    `options`: labelme accepts `skeleton=` to fix the keypoint order and names.
    """
    if fmt not in _READERS:
        known = ", ".join(IMPORT_FORMATS)
        raise ValueError(f"unknown import format {fmt!r}; choose one of {known}")
    root = Path(images_root) if images_root is not None else None
    return _READERS[fmt](Path(file), root, skip_missing, **options)


def write_labels(fmt: str, labels: LabelSet, out: Path) -> list[Path]:
    """Export a LabelSet; returns the files written (data files first)."""
    if fmt not in _WRITERS:
        known = ", ".join(EXPORT_FORMATS)
        raise ValueError(f"unknown export format {fmt!r}; choose one of {known}")
    return _WRITERS[fmt](labels, Path(out))
