"""Reading and writing the annotation files themselves: JSON in, exports out."""

from __future__ import annotations

import json
import os
from pathlib import Path

from kpstudio.core.labelset import LabelError
from kpstudio.core.limits import MAX_ANNOTATION_BYTES
from kpstudio.core.regular_files import FileRefused, read_regular


def read_text(file: Path, max_bytes: int = MAX_ANNOTATION_BYTES) -> str:
    """The file's text; LabelError (naming it) when it is missing, not a regular file, larger
    than `max_bytes` or not UTF-8."""
    file = Path(file)
    try:
        data = read_regular(file, max_bytes)
    except FileRefused as exc:
        raise LabelError(str(exc)) from None
    try:
        # utf-8-sig: files saved by Windows editors often start with a byte-order mark.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LabelError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def load_json(file: Path) -> object:
    """Parsed JSON; a syntax error is a LabelError naming the file, line and column."""
    text = read_text(file)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabelError(
            f"{file}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        # The C parser recurses per nesting level; Python's recursion limit (~1000) bounds it.
        raise LabelError(f"{file}: JSON nested too deeply to be an annotation file") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise LabelError(f"{file}: JSON holds a value kpstudio cannot read ({exc})") from None


def output_file(out: Path, suffix: str, default_name: str) -> Path:
    """`out` itself when it names a `suffix` file, else `default_name` inside the folder `out`."""
    out = Path(out)
    if out.suffix.lower() == suffix and not out.is_dir():
        return out
    return out / default_name


def write_text(path: Path, text: str) -> Path:
    """Write via a temporary name so a crash never leaves a half-written export behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary file sits beside the target (same file system, so the replace is atomic)
    # and is removed again whatever fails: a full disk, or a folder where the file should go.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8", newline="")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, data: object) -> Path:
    # allow_nan=False: a NaN that slipped through must fail here, not in another tool later.
    return write_text(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
