"""Moving whole label sets into and out of a project (what `kpstudio import/export` do).

An import is all or nothing: the LabelSet was validated by its format's reader, the skeleton is
checked against the project's here, and then images and labels are written in ONE transaction.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from kpstudio.core.labelset import ImageEntry, Instance, LabelSet
from kpstudio.core.project import Project, ProjectError
from kpstudio.core.skeleton import Skeleton

EMBEDDED_IMAGE_FOLDER = "images"  # where images carried inside annotation files are written


def import_labelset(
    project: Project, labels: LabelSet, source: str = "manual", progress=None
) -> dict:
    """Write a validated LabelSet into the project; returns a summary for the user.

    The project adopts the file's skeleton when it has none; otherwise every keypoint in the
    file must exist in the project. Images already in the project get the file's labels.
    `progress(done, total)` is called while the image files are hashed."""
    skeleton = _merged_skeleton(project.skeleton, labels.skeleton, labels.root)
    order = [skeleton.keypoints.index(name) for name in labels.skeleton.keypoints]
    k = len(skeleton)

    rows, written = [], []
    try:
        for done, entry in enumerate(labels.images, 1):
            path = _image_file(project, labels.root, entry, written)
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            rows.append((path, entry, sha))
            if progress:
                progress(done, len(labels.images))
        with project.transaction() as conn:
            if project.skeleton != skeleton:
                project.write_skeleton(conn, skeleton)
            replaced = 0
            for path, entry, sha in rows:
                rel = project.relative_path(path)
                found = conn.execute("SELECT id FROM images WHERE path = ?", (rel,)).fetchone()
                if found:
                    image_id = found[0]
                    replaced += 1
                else:
                    image_id = conn.execute(
                        "INSERT INTO images(path, width, height, sha256, split, added) "
                        "VALUES (?, ?, ?, ?, ?, strftime('%s','now'))",
                        (rel, entry.width, entry.height, sha,
                         entry.split or project.split_for(sha)),
                    ).lastrowid  # fmt: skip
                instances = [_reorder(inst, order, k) for inst in entry.instances]
                project.replace_instances(conn, image_id, instances, source)
    except BaseException:
        for path in written:  # images we extracted for an import that did not happen
            path.unlink(missing_ok=True)
        raise
    return {
        "images": len(rows),
        "already_in_project": replaced,
        "labeled_images": labels.labeled_images,
        "instances": sum(len(e.instances) for e in labels.images),
        "keypoints": list(skeleton.keypoints),
        "warnings": list(labels.warnings),
    }


def export_labelset(project: Project, labeled_only: bool = False) -> LabelSet:
    """The project's images and labels as a LabelSet rooted at the images' common folder."""
    skeleton = project.skeleton
    if skeleton is None:
        raise ProjectError(f"project {project.folder} has no skeleton; nothing to export")
    records = project.images()
    paths = [project.image_path(r) for r in records]
    if paths:
        root = Path(os.path.commonpath([p.parent for p in paths]))
    else:
        root = project.folder
    out = LabelSet(skeleton=skeleton, root=root)
    for record, path in zip(records, paths, strict=True):
        instances = project.instances(record.id)
        if labeled_only and not instances:
            continue
        out.images.append(
            ImageEntry(
                path=path.relative_to(root).as_posix(), width=record.width,
                height=record.height, instances=instances, split=record.split,
            )
        )  # fmt: skip
    return out


def _merged_skeleton(current: Skeleton | None, incoming: Skeleton, where: Path) -> Skeleton:
    if current is None:
        return incoming
    unknown = [n for n in incoming.keypoints if n not in current.keypoints]
    if unknown:
        raise ProjectError(
            f"the file's keypoints {', '.join(unknown)} are not in the project's skeleton "
            f"({', '.join(current.keypoints)}); import into a new project or add them first "
            f"(importing from {where})"
        )
    return current


def _reorder(inst: Instance, order: list[int], k: int) -> Instance:
    out = Instance.empty(k)
    out.xy[order] = inst.xy
    out.visibility[order] = inst.visibility
    return out


def _image_file(project: Project, root: Path, entry: ImageEntry, written: list[Path]) -> Path:
    data = getattr(entry, "data", None)
    path = (root / entry.path).resolve()
    if path.is_file() or data is None:
        if not path.is_file():
            raise ProjectError(f"image {path} named in the import does not exist")
        return path
    # The annotation file carried the image itself (labelme imageData): keep it in the project.
    folder = project.folder / EMBEDDED_IMAGE_FOLDER
    folder.mkdir(exist_ok=True)
    target = folder / Path(entry.path).name
    stem, n = target.stem, 1
    while target.exists():
        target = folder / f"{stem}_{n}{target.suffix}"
        n += 1
    written.append(target)  # before writing: a write that fails half-way is removed too
    target.write_bytes(data)
    return target
