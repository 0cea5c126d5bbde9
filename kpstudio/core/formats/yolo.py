"""Ultralytics YOLO pose datasets: a data YAML, images/<split>/..., labels/<split>/....txt.

Each label line is ``class cx cy w h`` then K × (x y [v]), all normalised by the image size.

Conventions:
- Coordinates: normalised x · W with the origin at the image's top-left corner — our corner
  convention — so there is no half-pixel shift. Values are written with 6 decimals (the
  precision loss of a round trip is at most 5e-7 · W px).
- Visibility: with ``kpt_shape: [K, 3]`` v is COCO's 0/1/2 ↔ ABSENT/OCCLUDED/VISIBLE; with
  ``[K, 2]`` every point is VISIBLE except x = y = 0, which is absent. Absent exports as 0 0 0.
- Label files: ultralytics' rule — the last ``images`` folder of the image path becomes
  ``labels`` and the suffix ``.txt``; an image without a label file has no instances.
- Names: ``kpt_names`` when present (newer ultralytics), else kp0 … kpK-1; ``flip_idx`` gives
  the left/right pairs (an index mapping to itself is no pair); the box and class id are
  dropped on import (boxes are rebuilt from the keypoints on export).
- The dataset root is ``path`` when it lies inside the YAML's folder, else the YAML's folder;
  ``train``/``val``/``test`` (a folder, a .txt list of images, or a list of those) give
  ImageEntry.split.
- Export copies each image byte for byte (EXIF kept: ultralytics applies it on reading just as
  we do) to images/<split>/<its path> and writes labels/<split>/<its path>.txt; a folder
  called ``images`` inside an image's own path is renamed ``_images`` so the label rule still
  finds the label. Split None exports as train.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

import yaml

from kpstudio.core.formats.files import read_text, write_text
from kpstudio.core.formats.image_paths import (
    ImageRef,
    handle_missing,
    image_size,
    locate_images,
    usable_path,
)
from kpstudio.core.formats.naming import infer_flip_pairs
from kpstudio.core.formats.points import has_labels, keypoint_box, parse_number, parse_visibility
from kpstudio.core.image_reader import IMAGE_SUFFIXES
from kpstudio.core.labelset import (
    ImageEntry,
    Instance,
    LabelError,
    LabelSet,
    Visibility,
    check_point,
    safe_relative_path,
)
from kpstudio.core.limits import MAX_KEYPOINTS, MAX_YAML_BYTES
from kpstudio.core.regular_files import quote
from kpstudio.core.skeleton import Skeleton, SkeletonError

SPLITS = ("train", "val", "test")


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader refusing aliases (``*name``): a few lines of nested aliases expand to
    billions of items ("billion laughs"), and no data YAML needs them."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a data YAML", mark
            )
        return super().compose_node(parent, index)


def read(file: Path, images_root: Path | None = None, skip_missing: bool = False) -> LabelSet:
    """Parse a YOLO pose data YAML and its label files into a LabelSet."""
    file = Path(file)
    try:
        data = yaml.load(read_text(file, MAX_YAML_BYTES), Loader=_NoAliasLoader)  # noqa: S506
    except RecursionError:
        raise LabelError(f"{file}: YAML nested too deeply to be a data YAML") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise LabelError(f"{file}: malformed YAML{at}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise LabelError(f"{file}: a YOLO data YAML is a mapping of keys (path, train, kpt_shape)")
    k, dims = _kpt_shape(data.get("kpt_shape"), file)
    skeleton = _skeleton(data, k, file)
    warnings: list[str] = []
    root = Path(images_root) if images_root is not None else _dataset_root(data, file, warnings)

    refs, splits = _split_images(data, root, file, skip_missing, warnings)
    root, located = locate_images(file, root, refs)
    keep = handle_missing(file, root, located, skip_missing, warnings)
    seen: set[str] = set()
    todo = []
    for loc, split, kept in zip(located, splits, keep):
        if kept and loc.found not in seen:
            seen.add(loc.found)
            # Parse every label file before reading any image size.
            todo.append((loc.found, split, _labels(root, loc.found, skeleton, dims)))
    repeated = sum(keep) - len(todo)
    if repeated:  # e.g. val: images/train, as quick-start datasets do
        warnings.append(f"{file}: {repeated} images are in more than one split; kept in the first")
    names = data.get("names")
    if isinstance(names, (dict, list)) and len(names) > 1:
        warnings.append(f"{file}: {len(names)} classes; class ids are dropped (one skeleton)")

    out = LabelSet(skeleton, root, warnings=warnings)
    for rel, split, (label_file, lines) in todo:
        width, height = image_size(root, rel, f"{file}: {rel}")
        entry = ImageEntry(rel, width, height, split=split)
        for line, values in lines:
            inst = Instance.empty(k)
            for j, name in enumerate(skeleton.keypoints):
                x, y, v = values[j]
                if v == Visibility.ABSENT:
                    continue
                where = f"{label_file}: line {line} keypoint {name!r}"
                inst.xy[j] = check_point(x * width, y * height, width, height, where, warnings)
                inst.visibility[j] = v
            entry.instances.append(inst)
        out.images.append(entry)
    return out


def _kpt_shape(raw: object, file: Path) -> tuple[int, int]:
    ok = isinstance(raw, list) and len(raw) == 2 and all(type(v) is int for v in raw)
    if not ok or raw[0] < 1 or raw[1] not in (2, 3):
        raise LabelError(f"{file}: kpt_shape must be [K, 2] or [K, 3], not {quote(raw)}")
    if raw[0] > MAX_KEYPOINTS:  # before a name or a column is made per keypoint
        raise LabelError(
            f"{file}: kpt_shape asks for {raw[0]:,} keypoints; kpstudio's limit is {MAX_KEYPOINTS}"
        )
    return raw[0], raw[1]


def _skeleton(data: dict, k: int, file: Path) -> Skeleton:
    raw = data.get("kpt_names")
    if isinstance(raw, dict):  # ultralytics writes {class id: [names]}
        raw = next(iter(raw.values()), None)
    elif isinstance(raw, list) and raw and isinstance(raw[0], list):
        raw = raw[0]
    if raw is None:
        names = [f"kp{i}" for i in range(k)]
    elif isinstance(raw, list) and len(raw) == k and all(isinstance(n, str) for n in raw):
        names = raw
    else:
        raise LabelError(f"{file}: kpt_names must list {k} names (kpt_shape says {k} keypoints)")
    flip = data.get("flip_idx")
    if flip is None:
        pairs = infer_flip_pairs(names)
    else:
        ok = (
            isinstance(flip, list)
            and len(flip) == k
            and all(type(i) is int and 0 <= i < k for i in flip)
        )
        if not ok or any(flip[flip[i]] != i for i in range(k)):
            raise LabelError(
                f"{file}: flip_idx must list {k} keypoint numbers that swap in pairs, "
                f"not {quote(flip)}"
            )
        pairs = [(names[i], names[j]) for i, j in enumerate(flip) if i < j]
    try:
        return Skeleton.create(names, (), pairs)
    except SkeletonError as exc:
        raise LabelError(f"{file}: kpt_names: {exc}") from None


def _dataset_root(data: dict, file: Path, warnings: list[str]) -> Path:
    folder = file.parent
    raw = data.get("path")
    if raw in (None, "", "."):
        return folder
    if not usable_path(raw):
        raise LabelError(f"{file}: path {quote(raw)} is not a folder name")
    try:
        rel = safe_relative_path(str(raw), folder, f"{file}: path")
    except LabelError:
        rel = None
    if rel is not None and (folder / rel).is_dir():
        return folder / rel
    # ultralytics resolves a foreign `path` against its own settings; we never leave the
    # YAML's folder unless the user says so.
    warnings.append(
        f"{file}: dataset path {quote(raw)} is not a folder beside the YAML; reading the dataset "
        "from the YAML's folder (choose another with the images folder)"
    )
    return folder


def _split_images(
    data: dict, root: Path, file: Path, skip_missing: bool, warnings: list[str]
) -> tuple[list[ImageRef], list[str]]:
    refs: list[ImageRef] = []
    splits: list[str] = []
    for split in SPLITS:
        value = data.get(split)
        for item in value if isinstance(value, list) else [value]:
            if item in (None, ""):
                continue
            where = f"{file}: {split}"
            if not usable_path(item):
                raise LabelError(f"{where}: {quote(item)} is not a folder or .txt list name")
            rel = safe_relative_path(str(item), root, where)
            full = root / rel
            if full.is_dir():
                found = sorted(
                    p
                    for p in full.rglob("*")
                    if p.suffix.lower() in IMAGE_SUFFIXES
                    and p.is_file()
                    and not any(part.startswith(".") for part in p.relative_to(full).parts)
                )
                refs += [ImageRef(p.relative_to(root).as_posix(), where) for p in found]
            elif full.is_file() and full.suffix.lower() == ".txt":
                refs += _listed(full, where)
            elif skip_missing:
                warnings.append(f"{where}: {item!r} does not exist under {root}; skipped")
                continue
            else:
                raise LabelError(
                    f"{where}: {quote(item)} is not a folder or .txt list under {root}"
                )
            splits += [split] * (len(refs) - len(splits))
    return refs, splits


def _listed(txt: Path, where: str) -> list[ImageRef]:
    """Images named in a split's .txt list; './x' lines are relative to the list's folder."""
    refs = []
    for n, line in enumerate(read_text(txt).splitlines(), start=1):
        line = line.strip()
        if line:
            base = txt.parent if line.startswith("./") else None
            refs.append(ImageRef(line, f"{txt}: line {n}", base))
    return refs


def label_path(rel: str) -> str:
    """ultralytics' rule: the last images/ folder becomes labels/, the suffix .txt."""
    text = "/" + rel
    if "/images/" in text:
        head, tail = text.rsplit("/images/", 1)
        text = f"{head}/labels/{tail}"
    return str(PurePosixPath(text[1:]).with_suffix(".txt"))


def _labels(
    root: Path, rel: str, skeleton: Skeleton, dims: int
) -> tuple[Path, list[tuple[int, list[tuple[float, float, int]]]]]:
    label_rel = safe_relative_path(label_path(rel), root, f"labels of {rel}")
    label_file = root / label_rel
    if not label_file.is_file():
        return label_file, []
    k = len(skeleton)
    need = 5 + k * dims
    out = []
    for n, line in enumerate(read_text(label_file).splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        where = f"{label_file}: line {n}"
        if len(tokens) != need:
            raise LabelError(
                f"{where}: {len(tokens)} values; class, box and {k} keypoints × {dims} need {need}"
            )
        cls = parse_number(tokens[0], f"{where} class")
        if cls < 0 or cls != int(cls):
            raise LabelError(f"{where}: class {tokens[0]!r} is not a class number")
        for t in tokens[1:5]:
            parse_number(t, f"{where} box")
        values = []
        for j, name in enumerate(skeleton.keypoints):
            at = f"{where} keypoint {name!r}"
            x, y = (parse_number(t, at) for t in tokens[5 + j * dims : 7 + j * dims])
            if dims == 3:
                v = parse_visibility(tokens[7 + j * dims], at)
            else:
                v = Visibility.ABSENT if x == 0 and y == 0 else Visibility.VISIBLE
            values.append((x, y, int(v)))
        out.append((n, values))
    return label_file, out


def write(labels: LabelSet, out: Path) -> list[Path]:
    """Write a YOLO pose dataset into the folder `out` (data.yaml, images/, labels/)."""
    out = Path(out)
    written: list[Path] = []
    splits_used: set[str] = set()
    targets: set[str] = set()
    for entry in labels.images:
        split = entry.split if entry.split in SPLITS else "train"
        splits_used.add(split)
        parts = ["_images" if p == "images" else p for p in PurePosixPath(entry.path).parts]
        rel = PurePosixPath("images", split, *parts).as_posix()
        if rel in targets:
            raise LabelError(f"two images would both be exported as {rel}")
        targets.add(rel)
        written.append(_copy_image(labels.root, entry, out / rel))
        lines = [
            _line(inst, entry.width, entry.height) for inst in entry.instances if has_labels(inst)
        ]
        written.append(write_text(out / label_path(rel), "".join(lines)))
    for split in ("train", "val"):  # the YAML names both; ultralytics refuses a missing one
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    names = list(labels.skeleton.keypoints)
    data = {
        "path": ".",
        "train": "images/train",
        "val": "images/val",
        **({"test": "images/test"} if "test" in splits_used else {}),
        "kpt_shape": [len(names), 3],
        "flip_idx": labels.skeleton.flip_permutation(),
        "names": {0: "object"},
        "kpt_names": {0: names},
    }
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None)
    written.insert(0, write_text(out / "data.yaml", text))
    return written


def _copy_image(root: Path, entry: ImageEntry, dest: Path) -> Path:
    source = root / entry.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.is_file() and dest.exists() and dest.samefile(source):
        return dest
    if not source.is_file() and entry.data is None:
        raise LabelError(f"{source}: image missing; cannot copy it into the YOLO dataset")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")  # a failed copy leaves nothing
    try:
        if source.is_file():
            shutil.copyfile(source, tmp)
        else:
            tmp.write_bytes(entry.data)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def _line(inst: Instance, width: int, height: int) -> str:
    x, y, w, h = keypoint_box(inst, width, height)
    values = [(x + w / 2) / width, (y + h / 2) / height, w / width, h / height]
    for (px, py), v in zip(inst.xy, inst.visibility):
        values += [0.0, 0.0, 0] if v == Visibility.ABSENT else [px / width, py / height, int(v)]
    return "0 " + " ".join(str(v) if isinstance(v, int) else f"{v:.6f}" for v in values) + "\n"
