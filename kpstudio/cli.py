"""The `kpstudio` command: the studio's jobs, headless.

Only argparse is imported at module level, so `kpstudio --help` stays fast and loads neither Qt
nor TensorFlow; each subcommand imports what it needs when it runs.
Exit codes: 0 success, 1 a clear user-facing error (on stderr), 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kpstudio import __version__

FORMATS_IN = ("coco", "labelme", "dlc", "yolo")
FORMATS_OUT = ("coco", "labelme", "dlc", "yolo", "csv")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kpstudio",
        description="kpstudio: label keypoints, train a keypoint model, review and export.",
        epilog="A project is a folder holding its SQLite store (project.kpstudio).",
    )
    parser.add_argument("--version", action="version", version=f"kpstudio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="build the sample project (no download)")
    p.add_argument("dir", nargs="?", type=Path, default=None,
                   help="where to build it (default: ~/kpstudio-demo)")  # fmt: skip
    p.add_argument("--no-gui", action="store_true", help="only build it, do not open a window")
    p.set_defaults(run=_cmd_demo)

    p = sub.add_parser("new", help="create a project from a folder of images")
    p.add_argument("project", type=Path)
    p.add_argument("--images", type=Path, required=True, help="folder of images to add")
    p.add_argument("--keypoints", required=True, help="keypoint names in clicking order: a,b,c")
    p.add_argument("--edges", default="", help="edges to draw: a-b,b-c (or a:b for names with -)")
    p.add_argument("--flip", default="", help="left/right pairs: l_eye:r_eye,l_ear:r_ear")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of val images")
    p.set_defaults(run=_cmd_new)

    p = sub.add_parser("import", help="import an annotation file (creates PROJECT if missing)")
    p.add_argument("project", type=Path)
    p.add_argument("file", type=Path, help="annotation file (labelme: a JSON or a folder)")
    p.add_argument("--format", required=True, choices=FORMATS_IN)
    p.add_argument(
        "--images", type=Path, default=None,
        help="image root (default: the file's folder, then its images/ subfolder)",
    )  # fmt: skip
    p.add_argument(
        "--skip-missing", action="store_true",
        help="skip images the file names but that do not exist (default: refuse)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=_cmd_import)

    p = sub.add_parser("export", help="export the project's labels")
    p.add_argument("project", type=Path)
    p.add_argument("--format", required=True, choices=FORMATS_OUT)
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="file (coco, dlc, csv) or folder (labelme, yolo)")  # fmt: skip
    p.add_argument("--labeled-only", action="store_true", help="leave out unlabeled images")
    p.set_defaults(run=_cmd_export)

    p = sub.add_parser("info", help="what a project holds")
    p.add_argument("project", type=Path)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=_cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    try:
        return args.run(args) or 0
    except BrokenPipeError:  # output piped into `head` and the like
        return 0
    except KeyboardInterrupt:
        print("kpstudio: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # user-facing errors are ValueError/OSError subclasses
        if not _is_user_error(exc):
            raise
        print(f"kpstudio: error: {exc}", file=sys.stderr)
        return 1


def _is_user_error(exc: Exception) -> bool:
    from kpstudio.core.project_lock import ProjectLockedError

    return isinstance(exc, ValueError | OSError | ProjectLockedError)


def _progress(desc: str):
    """A tqdm bar on stderr driven by progress(done, total) callbacks."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="img", file=sys.stderr, disable=None)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


def _cmd_new(args) -> int:
    from kpstudio.core.project import Project
    from kpstudio.core.skeleton import Skeleton, parse_pairs

    names = [n for n in args.keypoints.split(",") if n.strip()]
    skeleton = Skeleton.create(names, parse_pairs(args.edges), parse_pairs(args.flip))
    if not args.images.is_dir():
        raise FileNotFoundError(f"image folder {args.images} does not exist")
    project = Project.create(args.project, skeleton, seed=args.seed, val_fraction=args.val_fraction)
    with project:
        ids, bad = project.add_image_folder(args.images, progress=_progress("scanning"))
    print(f"created {args.project} with {len(ids)} images and keypoints {', '.join(names)}")
    for path, message in bad:
        print(f"skipped {path}: {message}", file=sys.stderr)
    return 0


def _cmd_import(args) -> int:
    from kpstudio.core.formats import read_labels
    from kpstudio.core.project import DB_NAME, Project
    from kpstudio.core.project_transfer import import_labelset

    # Parse and validate the whole file before any project is created or touched.
    labels = read_labels(args.format, args.file, args.images, skip_missing=args.skip_missing)
    created = not (args.project / DB_NAME).exists()
    project = Project.create(args.project) if created else Project.open(args.project)
    try:
        with project:
            summary = import_labelset(project, labels, progress=_progress("importing"))
    except BaseException:
        if created:
            _remove_new_project(args.project)
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


def _remove_new_project(folder: Path) -> None:
    from kpstudio.core.project import DB_NAME, LOCK_NAME

    for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", LOCK_NAME):
        (folder / name).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass  # the folder held other things before: leave it


def _cmd_export(args) -> int:
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


def _cmd_info(args) -> int:
    from kpstudio.core.project import Project

    with Project.open(args.project, readonly=True) as project:
        skeleton = project.skeleton
        info = {"project": str(project.folder), "schema_version": project.schema_version}
        info.update(project.counts())
        info["keypoints"] = list(skeleton.keypoints) if skeleton else []
        info["edges"] = [list(e) for e in skeleton.edges] if skeleton else []
        info["flip_pairs"] = [list(p) for p in skeleton.flip_pairs] if skeleton else []
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"project   {info['project']}")
    print(f"images    {info['images']} ({info['labeled_images']} labeled, "
          f"{info['done_images']} done; train {info['split']['train']}, "
          f"val {info['split']['val']})")  # fmt: skip
    print(f"keypoints {', '.join(info['keypoints']) or '(none yet)'}")
    if info["edges"]:
        print(f"edges     {', '.join('-'.join(e) for e in info['edges'])}")
    if info["flip_pairs"]:
        print(f"flip      {', '.join(':'.join(p) for p in info['flip_pairs'])}")
    return 0


def _cmd_demo(args) -> int:
    from kpstudio.core.demo import build_demo_project

    folder = args.dir or Path.home() / "kpstudio-demo"
    summary = build_demo_project(folder)
    print(
        f"demo project ready in {folder}: {summary['images']} images, "
        f"{summary['labeled_images']} labeled, keypoints {', '.join(summary['keypoints'])}"
    )
    if not args.no_gui:
        print(
            "the studio window is not built yet; label and train from the command line "
            f"(kpstudio info {folder})",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
