"""labelme JSON: one file per image, a keypoint is a ``point`` shape labelled with its name.

Conventions:
- Coordinates: labelme stores Qt scene coordinates of a pixmap drawn at (0, 0), whose pixel i
  spans [i, i + 1) — the corner convention we use — so points are not shifted either way.
- Instances: ``group_id`` separates them (None counts as instance 0), ordered by group id.
- Visibility: a point is VISIBLE, or OCCLUDED when its shape ``flags`` hold ``"occluded": true``
  (labelme has no visibility of its own; export writes the same flag back).
- Other shape types (rectangles, polygons ...) are skipped with one warning per file.
- Keypoint order: the order of first appearance across files, unless a skeleton is given; left/
  right pairs are inferred from the names. A file set with no point shape at all and no given
  skeleton is refused: it holds no keypoints, so importing it could only create an empty
  skeleton — it is almost surely a segmentation file picked by mistake.
- ``imagePath`` is relative to the JSON. When that file is absent (or is not an image, as in
  labelme's own examples that name the JSON itself) but ``imageData`` embeds the image, the
  bytes are decoded to learn the size and carried on ImageEntry.data for the store to write.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from kpstudio.core.formats.files import load_json, write_json
from kpstudio.core.formats.image_paths import (
    ImageRef,
    check_stated_size,
    handle_missing,
    image_size,
    locate_images,
    relative_to_root,
)
from kpstudio.core.formats.naming import infer_flip_pairs
from kpstudio.core.formats.points import has_labels, parse_number
from kpstudio.core.image_reader import IMAGE_SUFFIXES, ImageReadError, decode_image
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

LABELME_VERSION = "5.5.0"  # the layout we write: labelme 5.x
_MAGIC_SUFFIX = (
    (b"\x89PNG", ".png"),
    (b"\xff\xd8", ".jpg"),
    (b"BM", ".bmp"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
    (b"RIFF", ".webp"),
)


@dataclass
class _Doc:
    """One parsed labelme file: its point shapes and the image it embeds, if any."""

    path: Path
    data: dict
    points: list  # (group, name, x, y, occluded, where)
    image_data: bytes | None


def read(
    file: Path,
    images_root: Path | None = None,
    skip_missing: bool = False,
    skeleton: Skeleton | None = None,
) -> LabelSet:
    """Parse one labelme JSON, or every *.json under a folder, into a LabelSet."""
    file = Path(file)
    if file.is_dir():
        # Recursive: our own export mirrors the image folders.
        jsons = sorted(
            p
            for p in file.rglob("*.json")
            if not any(s.startswith(".") for s in p.relative_to(file).parts)
        )
        if not jsons:
            raise LabelError(f"{file}: the folder holds no labelme .json files")
    else:
        jsons = [file]
    warnings: list[str] = []
    docs = [_parse(path, skeleton, warnings) for path in jsons]
    if skeleton is None:
        skeleton = _skeleton_from_names(file, docs)

    refs = [_image_ref(doc) for doc in docs]
    root, located = locate_images(file, images_root, refs)
    usable = [doc.image_data is not None for doc in docs]
    keep = handle_missing(file, root, located, skip_missing, warnings, usable)

    out = LabelSet(skeleton, root, warnings=warnings)
    owners: dict[str, Path] = {}
    for doc, loc, kept in zip(docs, located, keep):
        if not kept:
            continue
        where = str(doc.path)
        if loc.found is not None:
            rel, data = loc.found, None
            width, height = image_size(root, rel, where)
        else:
            rel, data = _embedded_path(doc, loc.rel, root), doc.image_data
            width, height = _embedded_size(data, where)
        if rel in owners:
            raise LabelError(f"{where}: image {rel} is already labeled by {owners[rel]}")
        owners[rel] = doc.path
        stated = (doc.data.get("imageWidth"), doc.data.get("imageHeight"))
        check_stated_size(stated, (width, height), rel, where)
        entry = ImageEntry(rel, width, height, data=data)
        entry.instances = _instances(doc, skeleton, width, height, warnings)
        out.images.append(entry)
    return out


def _parse(path: Path, skeleton: Skeleton | None, warnings: list[str]) -> _Doc:
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("shapes", []), list):
        raise LabelError(f"{path}: not a labelme file (a JSON object with a 'shapes' list)")
    points, skipped = [], Counter()
    for i, shape in enumerate(data.get("shapes", [])):
        where = f"{path}: shape {i}"
        if not isinstance(shape, dict):
            raise LabelError(f"{where}: a shape must be a JSON object")
        # labelme wrote no shape_type before 3.x; those shapes were all polygons.
        kind = shape.get("shape_type") or "polygon"
        if kind != "point":
            skipped[str(kind)] += 1
            continue
        label = shape.get("label")
        if not isinstance(label, str) or not normalise_name(label):
            raise LabelError(f"{where}: point shape has no label (the keypoint name)")
        name = normalise_name(label)
        where = f"{where} (keypoint {quote(name)})"
        if skeleton is not None:
            try:
                skeleton.index(name)
            except SkeletonError as exc:
                raise LabelError(f"{where}: {exc}") from None
        pts = shape.get("points")
        if (
            not isinstance(pts, list)
            or len(pts) != 1
            or not isinstance(pts[0], list)
            or len(pts[0]) != 2
        ):
            raise LabelError(f"{where}: a point shape needs exactly one [x, y] point")
        x, y = (parse_number(v, where) for v in pts[0])
        group = shape.get("group_id")
        if group is not None and (isinstance(group, bool) or not isinstance(group, int)):
            raise LabelError(f"{where}: group_id {group!r} is not a whole number")
        flags = shape.get("flags") or {}
        occluded = isinstance(flags, dict) and flags.get("occluded") is True
        points.append((group or 0, name, x, y, occluded, where))
    if skipped:
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(skipped.items()))
        warnings.append(f"{path}: skipped {sum(skipped.values())} non-point shapes ({counts})")
    return _Doc(path, data, points, _image_data(data, path))


def _image_data(data: dict, path: Path) -> bytes | None:
    raw = data.get("imageData")
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise LabelError(f"{path}: imageData is not base64 text")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise LabelError(f"{path}: imageData is not valid base64") from None


def _skeleton_from_names(file: Path, docs: list[_Doc]) -> Skeleton:
    names = list(dict.fromkeys(p[1] for doc in docs for p in doc.points))
    if not names:
        raise LabelError(
            f"{file}: no point shapes found; labelme keypoints are 'point' shapes labelled with "
            "the keypoint name (this file only has other shapes)"
        )
    try:
        return Skeleton.create(names, (), infer_flip_pairs(names))
    except SkeletonError as exc:
        raise LabelError(f"{file}: {exc}") from None


def _image_ref(doc: _Doc) -> ImageRef:
    raw = doc.data.get("imagePath")
    if not isinstance(raw, str) or not raw.strip():
        if doc.image_data is None:
            raise LabelError(f"{doc.path}: imagePath is missing and no imageData is embedded")
        raw = doc.path.name  # stands for the embedded image; renamed by _embedded_path
    return ImageRef(raw, str(doc.path), base=doc.path.parent)


def _embedded_path(doc: _Doc, rel: str, root: Path) -> str:
    """Where the embedded image will live: imagePath if it names an image, else <json stem>."""
    if PurePosixPath(rel).suffix.lower() in IMAGE_SUFFIXES:
        return rel
    suffix = next((s for magic, s in _MAGIC_SUFFIX if doc.image_data.startswith(magic)), ".png")
    beside = relative_to_root(ImageRef(doc.path.name, str(doc.path), doc.path.parent), root)
    return PurePosixPath(beside).with_suffix(suffix).as_posix()


def _embedded_size(data: bytes, where: str) -> tuple[int, int]:
    try:
        shape = decode_image(data, f"{where} (embedded imageData)").shape
    except ImageReadError as exc:
        raise LabelError(str(exc)) from None
    return shape[1], shape[0]


def _instances(
    doc: _Doc, skeleton: Skeleton, width: int, height: int, warnings: list[str]
) -> list[Instance]:
    k = len(skeleton)
    by_group: dict[int, Instance] = {}
    first: dict[tuple[int, int], str] = {}
    for group, name, x, y, occluded, where in doc.points:
        j = skeleton.index(name)
        if (group, j) in first:
            raise LabelError(
                f"{where}: instance {group} already has this keypoint ({first[group, j]})"
            )
        first[group, j] = where
        if group not in by_group and len(by_group) >= MAX_INSTANCES_PER_IMAGE:
            raise LabelError(f"{where}: more than {MAX_INSTANCES_PER_IMAGE} instances on one image")
        inst = by_group.setdefault(group, Instance.empty(k))
        inst.xy[j] = check_point(x, y, width, height, where, warnings)
        inst.visibility[j] = Visibility.OCCLUDED if occluded else Visibility.VISIBLE
    return [by_group[g] for g in sorted(by_group)]


def write(labels: LabelSet, out: Path) -> list[Path]:
    """One labelme 5.x JSON per image under the folder `out`, mirroring the image folders."""
    out = Path(out)
    written: list[Path] = []
    used: set[Path] = set()
    names = labels.skeleton.keypoints
    for entry in labels.images:
        rel = PurePosixPath(entry.path)
        target = out / rel.parent / f"{rel.stem}.json"
        if target in used:  # img.png beside img.jpg: keep both by their full names
            target = out / rel.parent / f"{rel.name}.json"
        used.add(target)
        image = labels.root / entry.path
        embed = entry.data is not None and not image.is_file()
        instances = [inst for inst in entry.instances if has_labels(inst)]
        several = len(instances) > 1
        shapes = [
            _shape(names[j], inst.xy[j], inst.visibility[j], idx if several else None)
            for idx, inst in enumerate(instances)
            for j in np.flatnonzero(inst.labeled())
        ]
        doc = {
            "version": LABELME_VERSION,
            "flags": {},
            "shapes": shapes,
            "imagePath": Path(
                os.path.relpath(image.absolute(), target.parent.absolute())
            ).as_posix(),
            "imageData": base64.b64encode(entry.data).decode("ascii") if embed else None,
            "imageHeight": entry.height,
            "imageWidth": entry.width,
        }
        written.append(write_json(target, doc))
    return written


def _shape(name: str, xy: np.ndarray, visibility: int, group: int | None) -> dict:
    occluded = visibility == Visibility.OCCLUDED
    return {
        "label": name,
        "points": [[round(float(xy[0]), 4), round(float(xy[1]), 4)]],
        "group_id": group,
        "description": "",
        "shape_type": "point",
        "flags": {"occluded": True} if occluded else {},
        "mask": None,
    }
