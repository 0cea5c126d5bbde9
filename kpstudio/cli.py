"""The `kpstudio` command: the studio's jobs, headless.

Only argparse is imported at module level, so `kpstudio --help` stays fast and loads neither Qt
nor TensorFlow; each subcommand imports what it needs when it runs.
Exit codes: 0 success, 1 a clear user-facing error (on stderr), 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kpstudio import __version__
from kpstudio.commands import video  # argparse-level only: its commands import their own deps

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

    p = sub.add_parser("open", help="open the studio window on a project")
    p.add_argument("project", type=Path, nargs="?", default=None)
    p.set_defaults(handler=_lazy("data", "cmd_open"))

    p = sub.add_parser("demo", help="build the sample project (no download) and open it")
    p.add_argument("dir", nargs="?", type=Path, default=None,
                   help="where to build it (default: ~/kpstudio-demo)")  # fmt: skip
    p.add_argument("--no-gui", action="store_true", help="only build it, do not open a window")
    p.set_defaults(handler=_lazy("data", "cmd_demo"))

    p = sub.add_parser("new", help="create a project from a folder of images")
    p.add_argument("project", type=Path)
    p.add_argument("--images", type=Path, required=True, help="folder of images to add")
    p.add_argument("--keypoints", required=True, help="keypoint names in clicking order: a,b,c")
    p.add_argument("--edges", default="", help="edges to draw: a-b,b-c (or a:b for names with -)")
    p.add_argument("--flip", default="", help="left/right pairs: l_eye:r_eye,l_ear:r_ear")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of val images")
    p.set_defaults(handler=_lazy("data", "cmd_new"))

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
    p.set_defaults(handler=_lazy("data", "cmd_import"))

    p = sub.add_parser("export", help="export the project's labels")
    p.add_argument("project", type=Path)
    p.add_argument("--format", required=True, choices=FORMATS_OUT)
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="file (coco, dlc, csv) or folder (labelme, yolo)")  # fmt: skip
    p.add_argument("--labeled-only", action="store_true", help="leave out unlabeled images")
    p.set_defaults(handler=_lazy("data", "cmd_export"))

    p = sub.add_parser("info", help="what a project holds")
    p.add_argument("project", type=Path)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_lazy("data", "cmd_info"))

    p = sub.add_parser("train", help="train a model on the labeled images (prints the run id)")
    p.add_argument("project", type=Path)
    p.add_argument("--arch", default="default", choices=("default", "seed"))
    p.add_argument("--epochs", type=int, default=None,
                   help="default: 300, or as many as fit in --max-minutes")  # fmt: skip
    p.add_argument("--max-minutes", type=float, default=None, help="time budget")
    p.add_argument("--input-size", type=int, default=None,
                   help="whole-image input side, px (default: the plan's; seed: 64)")  # fmt: skip
    p.add_argument("--crop", type=int, default=None,
                   help="training crop side, 0 for whole images (default: the plan's)")  # fmt: skip
    p.add_argument("--stride", type=int, default=None, choices=(2, 4),
                   help="heatmap stride (default: the plan's)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. augmentation.rotation_deg=10")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--strategy", default="default", choices=("default", "mirrored", "multiworker"))
    p.add_argument("--no-augment", action="store_true", help="train without augmentation")
    p.add_argument("--resume", metavar="RUN", default=None, help="continue a run's training")
    p.add_argument("--from", dest="warm_from", metavar="RUN", default=None,
                   help="start from the weights of RUN ('active': the active model), with its "
                        "settings, on the labels as they are now")  # fmt: skip
    p.add_argument("--follow", action="store_true",
                   help="take labels added or corrected while training into the next epoch")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a progress bar")
    p.set_defaults(handler=_lazy("ml", "cmd_train"))

    p = sub.add_parser("plan", help="the training settings the labels call for, and why")
    p.add_argument("project", type=Path)
    p.add_argument("--minutes", type=float, default=None, help="the time budget to plan for")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(handler=_lazy("plan", "cmd_plan"))

    p = sub.add_parser("evaluate", help="px error and PCK of a run on the val images")
    p.add_argument("project", type=Path)
    p.add_argument("--run", default=None, help="run id (default: the newest)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_lazy("ml", "cmd_evaluate"))

    p = sub.add_parser("predict", help="predict keypoints on images or videos with a .kpmodel")
    p.add_argument("model", type=Path)
    p.add_argument("inputs", type=Path, nargs="+", metavar="IMAGE_OR_DIR_OR_VIDEO")
    p.add_argument("-o", "--output", type=Path, required=True, help="OUT.json or OUT.csv")
    video.add_predict_options(p)
    p.set_defaults(handler=_lazy("ml", "cmd_predict"))

    p = sub.add_parser("export-model", help="export a run's model (checked after writing)")
    p.add_argument("project", type=Path)
    p.add_argument("--run", default=None, help="run id (default: the newest)")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="FILE.kpmodel | .keras | .tflite | .onnx | DIR (SavedModel)")  # fmt: skip
    p.add_argument("--fp16", action="store_true", help="float16 weights (TFLite)")
    p.set_defaults(handler=_lazy("ml", "cmd_export_model"))

    p = sub.add_parser("suggest", help="which unlabeled images to label next")
    p.add_argument("project", type=Path)
    p.add_argument("--count", type=int, default=10, help="how many images (default 10)")
    p.add_argument("--no-model", action="store_true",
                   help="diversity alone, even when a trained model exists")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_lazy("assist", "cmd_suggest"))

    p = sub.add_parser("learning-curve", help="val error against labels: will more labels help?")
    p.add_argument("project", type=Path)
    p.add_argument("--target", type=float, default=3.0, help="val mean px to reach (default 3)")
    p.add_argument("--train-subsets", action="store_true",
                   help="first train short runs on nested subsets of the train images")  # fmt: skip
    p.add_argument("--fractions", default="0.25,0.5,1",
                   help="the subsets' shares of the train images (default 0.25,0.5,1)")  # fmt: skip
    p.add_argument("--minutes", type=float, default=1.0, help="budget of each subset run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_lazy("assist", "cmd_learning_curve"))

    video.add_extract_frames_parser(sub, _lazy("video", "cmd_extract_frames"))
    return parser


def _lazy(module: str, name: str):
    """A command function imported only when that command runs."""

    def run(args):
        import importlib

        return getattr(importlib.import_module(f"kpstudio.commands.{module}"), name)(args)

    return run


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):  # `kpstudio` alone opens the studio
        args = parser.parse_args(["open"])
    try:
        return args.handler(args) or 0
    except BrokenPipeError:  # output piped into `head` and the like
        return 0
    except KeyboardInterrupt:
        print("kpstudio: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # user-facing errors are ValueError/OSError subclasses
        message = _damaged_store(exc, args) or (str(exc) if _is_user_error(exc) else None)
        if message is None:
            raise
        from kpstudio.commands import printable

        print(f"kpstudio: error: {printable(message)}", file=sys.stderr)
        return 1


def _damaged_store(exc: Exception, args) -> str | None:
    """A project store damaged inside (a page SQLite cannot read, text that is no longer UTF-8)
    shows only when that part is read, long after the project opened: name the project rather
    than print a traceback. (Files kpstudio reads itself turn decode errors into messages
    naming them; a bare UnicodeDecodeError comes from the store's text.)"""
    import sqlite3

    project = getattr(args, "project", None)
    if project is None or not isinstance(exc, sqlite3.DatabaseError | UnicodeDecodeError):
        return None
    return (
        f"the project store in {project} cannot be read ({exc}); it is damaged. Nothing was "
        "changed; restore it from a backup (project.kpstudio.v*.bak are kept on upgrades)"
    )


def _is_user_error(exc: Exception) -> bool:
    from kpstudio.core.project_lock import ProjectLockedError

    if isinstance(exc, ValueError | OSError | ProjectLockedError):
        return True
    export = sys.modules.get("kpstudio.ml.export")  # only loaded by the commands that export
    return export is not None and isinstance(exc, export.ExportError)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
