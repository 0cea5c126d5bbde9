"""Reading and writing the annotation files themselves: JSON in, exports out."""

from __future__ import annotations

import json
import os
from pathlib import Path

from kpstudio.core.labelset import LabelError


def read_text(file: Path) -> str:
    """The file's text; LabelError (naming it) when it is missing, a folder or not UTF-8."""
    file = Path(file)
    if not file.is_file():
        raise LabelError(f"{file}: no such file")
    try:
        # utf-8-sig: files saved by Windows editors often start with a byte-order mark.
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LabelError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise LabelError(f"{file}: cannot be read ({exc.strerror})") from None


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
        raise LabelError(f"{file}: malformed JSON (nested too deeply)") from None


def output_file(out: Path, suffix: str, default_name: str) -> Path:
    """`out` itself when it names a `suffix` file, else `default_name` inside the folder `out`."""
    out = Path(out)
    if out.suffix.lower() == suffix and not out.is_dir():
        return out
    return out / default_name


def write_text(path: Path, text: str) -> Path:
    """Write via a temporary name so a crash never leaves a half-written export behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, path)
    return path


def write_json(path: Path, data: object) -> Path:
    # allow_nan=False: a NaN that slipped through must fail here, not in another tool later.
    return write_text(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
