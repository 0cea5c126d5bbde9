"""Data commands: new, import, export, info, demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kpstudio.commands import printable, progress_bar


def cmd_new(args) -> int:
    from kpstudio.core.project import Project
    from kpstudio.core.skeleton import Skeleton, parse_pairs

    names = [n for n in args.keypoints.split(",") if n.strip()]
    skeleton = Skeleton.create(names, parse_pairs(args.edges), parse_pairs(args.flip))
    if not args.images.is_dir():
        raise FileNotFoundError(f"image folder {args.images} does not exist")
    existed = _existing_folders(args.project)
    project = Project.create(args.project, skeleton, seed=args.seed, val_fraction=args.val_fraction)
    try:
        with project:
            ids, bad = project.add_image_folder(args.images, progress=progress_bar("scanning"))
    except BaseException:  # a half-made project would block the retry: leave nothing behind
        _remove_new_project(args.project, existed)
        raise
    print(f"created {printable(args.project)} with {len(ids)} images and keypoints "
          f"{printable(', '.join(names))}")  # fmt: skip
    for path, message in bad:
        print(f"skipped {printable(path)}: {printable(message)}", file=sys.stderr)
    return 0


def cmd_import(args) -> int:
    from kpstudio.core.formats import read_labels
    from kpstudio.core.project import DB_NAME, Project
    from kpstudio.core.project_transfer import import_labelset

    # Parse and validate the whole file before any project is created or touched.
    labels = read_labels(args.format, args.file, args.images, skip_missing=args.skip_missing)
    db = args.project / DB_NAME
    created = not (db.exists() or db.is_symlink())  # a foreign file there is refused by open
    existed = _existing_folders(args.project)
    project = Project.create(args.project) if created else Project.open(args.project)
    try:
        with project:
            summary = import_labelset(project, labels, progress=progress_bar("importing"))
    except BaseException:
        if created:
            _remove_new_project(args.project, existed)
        raise
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"imported {summary['images']} images ({summary['labeled_images']} labeled, "
            f"{summary['instances']} instances) into {args.project}"
        )
        for warning in summary["warnings"]:
            print(f"warning: {warning}", file=sys.stderr)
    return 0


def _existing_folders(folder: Path) -> set[Path]:
    """The folders a new project may make that exist already (and so are never removed)."""
    from kpstudio.core.project_transfer import EMBEDDED_IMAGE_FOLDER

    return {p for p in (folder / EMBEDDED_IMAGE_FOLDER, folder) if p.exists()}


def _remove_new_project(folder: Path, existed: set[Path]) -> None:
    """Undo a project this command created: its store, its lock, and the folders it made when
    they are empty. Anything that was there before is left alone."""
    from kpstudio.core.project import DB_NAME, LOCK_NAME
    from kpstudio.core.project_transfer import EMBEDDED_IMAGE_FOLDER

    for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", LOCK_NAME):
        (folder / name).unlink(missing_ok=True)
    for made in (folder / EMBEDDED_IMAGE_FOLDER, folder):
        if made not in existed:
            try:
                made.rmdir()
            except OSError:
                pass  # not empty, or never made: leave it


def cmd_export(args) -> int:
    from kpstudio.core.formats import write_labels
    from kpstudio.core.project import Project
    from kpstudio.core.project_transfer import export_labelset

    with Project.open(args.project, readonly=True) as project:
        labels = export_labelset(project, labeled_only=args.labeled_only)
    written = write_labels(args.format, labels, args.output)
    print(
        f"exported {len(labels.images)} images ({labels.labeled_images} labeled) as "
        f"{args.format} to {args.output} ({len(written)} files); image paths are relative "
        f"to {labels.root}"
    )
    return 0


def cmd_info(args) -> int:
    from kpstudio.core.labeling_log import labeling_speed
    from kpstudio.core.project import Project

    with Project.open(args.project, readonly=True) as project:
        skeleton = project.skeleton
        speed = labeling_speed(project)
        info = {"project": str(project.folder), "schema_version": project.schema_version}
        info.update(project.counts())
        info["keypoints"] = list(skeleton.keypoints) if skeleton else []
        info["edges"] = [list(e) for e in skeleton.edges] if skeleton else []
        info["flip_pairs"] = [list(p) for p in skeleton.flip_pairs] if skeleton else []
        info["runs"] = _runs(project)
        info["labeling_speed"] = speed.to_dict()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    # Names in a project may come from any imported file: printed escaped, never raw.
    print(f"project   {printable(info['project'])}")
    print(f"images    {info['images']} ({info['labeled_images']} labeled, "
          f"{info['done_images']} done; train {info['split']['train']}, "
          f"val {info['split']['val']})")  # fmt: skip
    print(f"keypoints {printable(', '.join(info['keypoints'])) or '(none yet)'}")
    if info["edges"]:
        print(f"edges     {printable(', '.join('-'.join(e) for e in info['edges']))}")
    if info["flip_pairs"]:
        print(f"flip      {printable(', '.join(':'.join(p) for p in info['flip_pairs']))}")
    print(speed.sentence().replace("labeling speed: ", "speed     ", 1))
    for run in info["runs"]:
        figure = f"  val {run['mean_px']:.2f} px" if run["mean_px"] is not None else ""
        print(f"run       {run['id']}  {run['status']}{figure}")
    return 0


def _runs(project) -> list[dict]:
    from kpstudio.core.runs import list_runs

    return [{"id": r.id, "arch": r.arch, "status": r.status, "mean_px": r.metrics.get("mean_px"),
             "model": r.model_path} for r in list_runs(project)]  # fmt: skip


def cmd_demo(args) -> int:
    from kpstudio.core.demo import build_demo_project

    folder = args.dir or Path.home() / "kpstudio-demo"
    summary = build_demo_project(folder)
    print(
        f"demo project ready in {folder}: {summary['images']} images, "
        f"{summary['labeled_images']} labeled, keypoints {', '.join(summary['keypoints'])}"
    )
    if not args.no_gui:
        return _open_studio(folder)
    return 0


def cmd_open(args) -> int:
    return _open_studio(args.project)


def _open_studio(project) -> int:
    try:
        from kpstudio.gui.app import run_studio
    except ImportError as exc:  # Qt's system libraries are missing (see the README)
        raise OSError(f"the studio window cannot start: {exc}") from exc
    return run_studio(project)
