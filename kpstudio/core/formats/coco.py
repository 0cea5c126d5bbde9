"""COCO keypoints JSON (person_keypoints_*.json and the files mmpose, CVAT, Label Studio write).

Conventions:
- Coordinates: COCO keypoints are pixel indices — an integer is the centre of that pixel
  (detectron2 adds 0.5 when it loads them) — while ours put pixel i's centre at i + 0.5. So
  ours = coco + 0.5 on import and coco = ours − 0.5 on export. Boxes are continuous corner
  coordinates in both, so ``bbox`` is not shifted.
- Visibility: v 0/1/2 ↔ ABSENT/OCCLUDED/VISIBLE; an absent keypoint exports as 0, 0, 0.
- One category with keypoints makes the skeleton (its ``skeleton`` holds 1-based index pairs).
  COCO has no left/right pairs: they are inferred from the names (left_eye/right_eye ...).
- Every annotation becomes an Instance, even one with no labeled keypoint; crowd annotations
  (``iscrowd`` 1) and annotations of other categories are skipped with a warning.
- Export writes only instances with at least one labeled keypoint (an empty one would need a
  box from nowhere); bbox and area come from the labeled keypoints, padded a little.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from kpstudio.core.formats.files import load_json, output_file, write_json
from kpstudio.core.formats.image_paths import (
    ImageRef,
    check_stated_size,
    check_unique,
    handle_missing,
    image_size,
    locate_images,
)
from kpstudio.core.formats.naming import infer_flip_pairs
from kpstudio.core.formats.points import has_labels, keypoint_box, parse_number, parse_visibility
from kpstudio.core.labelset import (
    ImageEntry,
    Instance,
    LabelError,
    LabelSet,
    Visibility,
    check_point,
)
from kpstudio.core.limits import MAX_INSTANCES_PER_IMAGE, MAX_KEYPOINTS
from kpstudio.core.regular_files import quote
from kpstudio.core.skeleton import Skeleton, SkeletonError

# COCO's pixel-index coordinates sit half a pixel before ours.
SHIFT = 0.5


def read(file: Path, images_root: Path | None = None, skip_missing: bool = False) -> LabelSet:
    """Parse and validate a COCO keypoints file into a LabelSet."""
    file = Path(file)
    data = load_json(file)
    if not isinstance(data, dict):
        raise LabelError(f"{file}: a COCO file is a JSON object, not {type(data).__name__}")
    images = _list(data, "images", file)
    annotations = _list(data, "annotations", file, required=False)
    category, skeleton = _skeleton(_list(data, "categories", file), file)
    k = len(skeleton)
    warnings: list[str] = []

    by_id: dict[object, int] = {}
    refs: list[ImageRef] = []
    for i, im in enumerate(images):
        where = f"{file}: images[{i}]"
        if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
            raise LabelError(f"{where}: an image needs an 'id' and a 'file_name'")
        if not _is_id(im["id"]) or im["id"] in by_id:
            raise LabelError(f"{where}: image id {quote(im['id'])} is not a unique number")
        by_id[im["id"]] = i
        refs.append(ImageRef(im["file_name"], f"{file}: image id {quote(im['id'])}"))

    # Parse every annotation before touching any image, so a broken entry is reported even
    # when it sits on an image that turns out to be missing.
    parsed: list[list[tuple[np.ndarray, np.ndarray, str]]] = [[] for _ in images]
    crowd = other = 0
    for i, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            raise LabelError(f"{file}: annotations[{i}] is not an object")
        where = f"{file}: annotation {quote(ann['id']) if 'id' in ann else f'#{i}'}"
        if not _is_id(ann.get("category_id")) or ann["category_id"] != category["id"]:
            other += 1
            continue
        if ann.get("iscrowd") in (1, True):
            crowd += 1
            continue
        image_id = ann.get("image_id")
        # A bool is no id (JSON true would be taken for image 1), a list cannot be looked up.
        if not _is_id(image_id) or image_id not in by_id:
            raise LabelError(f"{where}: image_id {quote(image_id)} is not in 'images'")
        xy, vis = _keypoints(ann.get("keypoints"), skeleton, where)
        on_image = parsed[by_id[image_id]]
        if len(on_image) >= MAX_INSTANCES_PER_IMAGE:
            raise LabelError(
                f"{where}: more than {MAX_INSTANCES_PER_IMAGE} annotations on image {image_id}"
            )
        on_image.append((xy, vis, where))
    if crowd:
        warnings.append(f"{file}: skipped {crowd} crowd annotations (iscrowd 1)")
    if other:
        warnings.append(f"{file}: skipped {other} annotations of other categories")

    root, located = locate_images(file, images_root, refs)
    check_unique(located, refs)
    keep = handle_missing(file, root, located, skip_missing, warnings)
    out = LabelSet(skeleton, root, warnings=warnings)
    for im, loc, ref, anns, kept in zip(images, located, refs, parsed, keep):
        if not kept:
            continue
        width, height = image_size(root, loc.found, ref.where)
        check_stated_size(
            (im.get("width"), im.get("height")), (width, height), loc.found, ref.where
        )
        entry = ImageEntry(loc.found, width, height)
        for xy, vis, where in anns:
            inst = Instance.empty(k)
            for j in np.flatnonzero(vis):
                inst.xy[j] = check_point(
                    *xy[j], width, height, f"{where} keypoint {skeleton.keypoints[j]!r}", warnings
                )
                inst.visibility[j] = vis[j]
            entry.instances.append(inst)
        out.images.append(entry)
    return out


def _is_id(value: object) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _list(data: dict, key: str, file: Path, required: bool = True) -> list:
    value = data.get(key, None if required else [])
    if not isinstance(value, list):
        raise LabelError(f"{file}: '{key}' must be a list" + (" and is missing" * (value is None)))
    return value


def _skeleton(categories: list, file: Path) -> tuple[dict, Skeleton]:
    with_kp = [c for c in categories if isinstance(c, dict) and c.get("keypoints")]
    if not with_kp:
        raise LabelError(f"{file}: no category has keypoints; this is not a keypoints file")
    if len(with_kp) > 1:
        names = ", ".join(repr(c.get("name")) for c in with_kp)
        raise LabelError(
            f"{file}: {len(with_kp)} categories have keypoints ({names}); kpstudio imports one "
            "skeleton at a time — split the file by category"
        )
    cat = with_kp[0]
    where = f"{file}: category {quote(cat.get('name'))}"
    if not _is_id(cat.get("id")):
        raise LabelError(f"{where}: the category needs an 'id' number, not {quote(cat.get('id'))}")
    names = cat["keypoints"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise LabelError(f"{where}: 'keypoints' must be a list of names")
    if len(names) > MAX_KEYPOINTS:  # before anything is built per keypoint
        raise LabelError(f"{where}: {len(names):,} keypoints; kpstudio's limit is {MAX_KEYPOINTS}")
    raw_edges = cat.get("skeleton") or []
    if not isinstance(raw_edges, list):
        raise LabelError(f"{where}: 'skeleton' must be a list of keypoint number pairs")
    edges: list[tuple[str, str]] = []
    seen: set[frozenset[int]] = set()
    for pair in raw_edges:
        ok = (
            isinstance(pair, list)
            and len(pair) == 2
            and all(
                isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= len(names)
                for p in pair
            )
        )
        if not ok:
            raise LabelError(
                f"{where}: skeleton edge {quote(pair)} is not two 1-based keypoint numbers"
            )
        # Files in the wild repeat edges in both directions; one line is drawn either way.
        if pair[0] != pair[1] and frozenset(pair) not in seen:
            seen.add(frozenset(pair))
            edges.append((names[pair[0] - 1], names[pair[1] - 1]))
    try:
        return cat, Skeleton.create(names, edges, infer_flip_pairs(names))
    except SkeletonError as exc:
        raise LabelError(f"{where}: {exc}") from None


def _keypoints(raw: object, skeleton: Skeleton, where: str) -> tuple[np.ndarray, np.ndarray]:
    k = len(skeleton)
    if not isinstance(raw, list) or len(raw) != 3 * k:
        n = len(raw) if isinstance(raw, list) else 0
        raise LabelError(
            f"{where}: 'keypoints' holds {n} numbers; the skeleton's {k} keypoints need {3 * k}"
        )
    xy = np.full((k, 2), np.nan)
    vis = np.zeros(k, dtype=np.int8)
    for j, name in enumerate(skeleton.keypoints):
        at = f"{where} keypoint {name!r}"
        x, y = (parse_number(v, at) for v in raw[3 * j : 3 * j + 2])
        vis[j] = parse_visibility(raw[3 * j + 2], at)
        if vis[j] > 0:
            xy[j] = (x + SHIFT, y + SHIFT)
    return xy, vis


def write(labels: LabelSet, out: Path) -> list[Path]:
    """Write a COCO keypoints file (`out` a .json path, or a folder for annotations.json)."""
    path = output_file(Path(out), ".json", "annotations.json")
    names = labels.skeleton.keypoints
    index = {n: i + 1 for i, n in enumerate(names)}
    images, annotations = [], []
    for image_id, entry in enumerate(labels.images, start=1):
        images.append(
            {"id": image_id, "file_name": entry.path, "width": entry.width, "height": entry.height}
        )
        for inst in entry.instances:
            if not has_labels(inst):
                continue
            flat: list[float] = []
            for (x, y), v in zip(inst.xy, inst.visibility):
                if v == Visibility.ABSENT:
                    flat += [0, 0, 0]
                else:
                    flat += [round(float(x) - SHIFT, 4), round(float(y) - SHIFT, 4), int(v)]
            box = keypoint_box(inst, entry.width, entry.height)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "keypoints": flat,
                    "num_keypoints": int(np.count_nonzero(inst.labeled())),
                    "bbox": [round(v, 4) for v in box],
                    "area": round(box[2] * box[3], 4),
                    "iscrowd": 0,
                }
            )
    data = {
        "info": {
            "description": "exported by kpstudio",
            "version": "1.0",
            "year": date.today().year,
            "date_created": date.today().isoformat(),
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [
            {
                "id": 1,
                "name": "object",
                "supercategory": "object",
                "keypoints": list(names),
                "skeleton": [[index[a], index[b]] for a, b in labels.skeleton.edges],
            }
        ],
    }
    return [write_json(path, data)]
