"""Finding the images an annotation file names, without ever leaving the import root.

Annotation files name their images as the tool that wrote them saw them: DeepLabCut writes
``labeled-data/m4s1/img0000.png`` relative to its project, COCO a bare file name, labelme a path
relative to the JSON. The user points us at one folder (the import root) and we look for each
image there: first at the full relative path, then with leading folders dropped
(``m4s1/img0000.png``, ``img0000.png``), which finds images that were moved or flattened
without ever looking outside the root. Paths that climb out of the root are refused outright.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kpstudio.core.image_reader import IMAGE_SUFFIXES, ImageReadError, read_image_size
from kpstudio.core.labelset import LabelError, safe_relative_path
from kpstudio.core.regular_files import quote

# How many missing images a message lists before it only gives the count.
_LIST_AT_MOST = 5
# Linux's PATH_MAX and NAME_MAX: no longer path, or longer name in it, can name a file (and the
# file system answers one with an error instead of "no such file").
MAX_PATH_CHARS = 4096
MAX_NAME_BYTES = 255


@dataclass
class ImageRef:
    """One image named by a file: the raw path, where it was named, what it is relative to."""

    raw: str
    where: str  # "file: annotation 12", for messages
    base: Path | None = None  # folder a relative `raw` is written against; None: the root


@dataclass
class Located:
    rel: str  # the path as the file names it, relative to the root
    found: str | None  # the existing image it led to, relative to the root; None: missing


def candidate_roots(file: Path, images_root: Path | None) -> list[Path]:
    """The user's root, else the file's folder (a folder input is its own) then its images/."""
    if images_root is not None:
        return [Path(images_root)]
    folder = file if file.is_dir() else file.parent
    roots = [folder]
    if (folder / "images").is_dir():
        roots.append(folder / "images")
    return roots


def locate_images(
    file: Path, images_root: Path | None, refs: list[ImageRef]
) -> tuple[Path, list[Located]]:
    """Pick the import root and find every referenced image under it.

    With no root given, the file's folder wins unless its images/ subfolder finds more images.
    A path that escapes the user's (or first) root is an error; under the fallback root it just
    disqualifies that root.
    """
    roots = candidate_roots(file, images_root)
    best: tuple[Path, list[Located]] | None = None
    for i, root in enumerate(roots):
        try:
            located = [_locate(ref, root) for ref in refs]
        except LabelError:
            if i == 0:
                raise
            continue
        if best is None or _found(located) > _found(best[1]):
            best = (root, located)
        if _found(located) == len(refs):
            break
    assert best is not None
    return best


def _found(located: list[Located]) -> int:
    return sum(loc.found is not None for loc in located)


def _locate(ref: ImageRef, root: Path) -> Located:
    rel = relative_to_root(ref, root)
    parts = PurePosixPath(rel).parts
    for i in range(len(parts)):
        candidate = PurePosixPath(*parts[i:]).as_posix()
        full = root / candidate
        if full.suffix.lower() in IMAGE_SUFFIXES and _is_file(full):
            # Re-check: the shortened path may be a symlink leading out of the root.
            safe_relative_path(candidate, root, ref.where)
            return Located(rel, candidate)
    return Located(rel, None)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name too long for the file system, say: no such image
        return False


def usable_path(raw: object) -> bool:
    """Text that could name a file: UTF-8 (no lone surrogates from a JSON or YAML escape), and
    not too long as a whole or in any of its parts."""
    if not isinstance(raw, str) or len(raw) > MAX_PATH_CHARS:
        return False
    try:
        parts = [part.encode("utf-8") for part in raw.replace("\\", "/").split("/")]
    except UnicodeEncodeError:
        return False
    return all(len(part) <= MAX_NAME_BYTES for part in parts)


def relative_to_root(ref: ImageRef, root: Path) -> str:
    """The image path of `ref` relative to `root`; LabelError when it leads outside."""
    if not usable_path(ref.raw):
        raise LabelError(f"{ref.where}: image path {quote(ref.raw)} is not a usable path")
    text = str(ref.raw).replace("\\", "/").strip()
    if ref.base is None or not text or PurePosixPath(text).is_absolute() or _drive(text):
        return safe_relative_path(text, root, ref.where)
    joined = Path(os.path.normpath(Path(ref.base).absolute() / text))
    root_abs = Path(os.path.normpath(root.absolute()))
    if joined.is_relative_to(root_abs):
        return safe_relative_path(joined.relative_to(root_abs).as_posix(), root, ref.where)
    if Path(os.path.normpath(Path(ref.base).absolute())).is_relative_to(root_abs):
        raise LabelError(f"{ref.where}: image path {ref.raw!r} escapes the import folder {root}")
    # The file lies outside the root the user chose for the images: read its path from there.
    return safe_relative_path(text, root, ref.where)


def _drive(text: str) -> bool:
    return len(text) > 1 and text[1] == ":" and text[0].isalpha()


def check_unique(located: list[Located], refs: list[ImageRef]) -> None:
    """Two entries naming one image would give it two conflicting label sets: refuse."""
    seen: dict[str, str] = {}
    for loc, ref in zip(located, refs):
        if loc.found is None:
            continue
        if loc.found in seen:
            raise LabelError(
                f"{ref.where}: image {loc.found} is already labeled by {seen[loc.found]}"
            )
        seen[loc.found] = ref.where


def handle_missing(
    file: Path,
    root: Path,
    located: list[Located],
    skip_missing: bool,
    warnings: list[str],
    usable: list[bool] | None = None,
) -> list[bool]:
    """Which images to keep; raises for missing ones unless `skip_missing`.

    `usable` marks entries that have another source for their pixels (labelme's embedded
    imageData), so a missing file does not count against them.
    """
    keep = [
        loc.found is not None or (usable is not None and usable[i]) for i, loc in enumerate(located)
    ]
    missing = [loc.rel for loc, k in zip(located, keep) if not k]
    if missing:
        listed = ", ".join(missing[:_LIST_AT_MOST]) + (
            ", ..." if len(missing) > _LIST_AT_MOST else ""
        )
        what = f"{len(missing)} of the {len(located)} images it names"
        if not skip_missing:
            raise LabelError(
                f"{file}: {what} are missing under {root}: {listed}. Point the import at the "
                "folder that holds them, or skip the missing images"
            )
        warnings.append(f"{file}: skipped {what}, missing under {root}: {listed}")
    return keep


def image_size(root: Path, rel: str, where: str) -> tuple[int, int]:
    """(width, height) of an image as the user sees it; LabelError if it cannot be read."""
    try:
        return read_image_size(root / rel)
    except ImageReadError as exc:
        raise LabelError(f"{where}: {exc}") from None


def check_stated_size(
    stated: tuple[object, object], actual: tuple[int, int], rel: str, where: str
) -> None:
    """A size in the file that disagrees with the image means the labels belong elsewhere."""
    sw, sh = stated
    if sw is None and sh is None:
        return
    try:
        ok = (float(sw), float(sh)) == (float(actual[0]), float(actual[1]))
    except (TypeError, ValueError, OverflowError):
        raise LabelError(f"{where}: image size {quote(sw)}×{quote(sh)} is not a number") from None
    if not ok:
        raise LabelError(
            f"{where}: the file says {rel} is {sw}×{sh} but the image is {actual[0]}×{actual[1]}"
        )
