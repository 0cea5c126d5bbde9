"""What a .kpmodel manifest must say, checked before anything is built from it (no TensorFlow).

Split from kpstudio.ml.model_file, which opens, writes and loads the file: this module only
judges the manifest's content, including a top-down model's second network (the finder).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kpstudio.core.regular_files import quote
from kpstudio.core.skeleton import Skeleton, SkeletonError
from kpstudio.ml.weight_layout import LayoutError, check_architecture

FORMAT = "kpstudio-model"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
WEIGHTS_NAME = "model.weights.h5"
FINDER_WEIGHTS_NAME = "finder.weights.h5"  # top-down models only
# Mirrors kpstudio.ml.models.ARCHITECTURES (a test keeps them equal): importing models would
# import TensorFlow, and read_manifest must stay cheap.
KNOWN_ARCHITECTURES = ("default", "seed")
MAX_OBJECTS = 1000  # objects a top-down model may report per image
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ModelFileError(ValueError):
    """A file is not a usable kpstudio model file; the message names the file and the problem."""


def misfit(path: Path, manifest: dict, problem: str) -> ModelFileError:
    arch = manifest["architecture"]
    return ModelFileError(
        f"{path}: the weights do not fit a {arch['name']!r} model with parameters "
        f"{quote(arch['params'])} ({problem}); the file was probably made by another "
        "kpstudio version: open it with that version, or train the model again"
    )


def check_manifest(m: Any, path: Path) -> None:
    """Refuse a manifest (ModelFileError naming the file) that is not one kpstudio writes."""
    def bad(problem: str) -> ModelFileError:
        return ModelFileError(f"{path}: the manifest {problem}")

    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise bad(f"does not say format {FORMAT!r}; this is not a kpstudio model file")
    version = m.get("format_version")
    if not _is_int(version) or version < 1:
        raise bad(f"has an invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: the model file was made by a newer kpstudio (format version {version}; "
            f"this kpstudio reads up to version {FORMAT_VERSION}); update kpstudio to load it"
        )
    try:
        skeleton = Skeleton.from_dict(m["skeleton"])
    except (SkeletonError, KeyError, TypeError, AttributeError) as exc:
        raise bad(f"has an invalid skeleton ({exc})") from None
    k = m.get("num_keypoints")
    if not _is_int(k) or k != len(skeleton):
        raise bad(f"says {k!r} keypoints but its skeleton has {len(skeleton)}")
    arch = m.get("architecture")
    if not isinstance(arch, dict) or arch.get("name") not in KNOWN_ARCHITECTURES:
        name = arch.get("name") if isinstance(arch, dict) else arch
        raise bad(
            f"names architecture {name!r}, which this kpstudio does not know "
            f"(it knows {', '.join(KNOWN_ARCHITECTURES)})"
        )
    params = arch.get("params")
    if not isinstance(params, dict) or not all(
        isinstance(key, str) and key.isidentifier() and (_is_scalar(v) or key == "relations")
        for key, v in params.items()  # relations: rows of numbers, checked by the layout
    ):
        raise bad(f"has invalid architecture parameters {quote(params)}")
    size = m.get("input_size")
    if not _is_int(size) or not 8 <= size <= 4096:
        raise bad(f"has an invalid input_size {quote(size)}")
    try:  # bounded before anything is built from them
        check_architecture(arch["name"], params, k, size)
    except LayoutError as exc:
        raise misfit(path, m, f"input size {size}: {exc}") from None
    _check_weights_entry(m.get("weights"), WEIGHTS_NAME, bad)
    if not isinstance(m.get("metrics", {}), dict):
        raise bad("has metrics that are not a mapping")
    if "top_down" in m:
        _check_top_down(m, path, bad)


def _is_int(v: Any) -> bool:  # JSON true/false must not pass for 1/0
    return isinstance(v, int) and not isinstance(v, bool)


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _check_weights_entry(entry: Any, name: str, bad) -> None:
    if (
        not isinstance(entry, dict)
        or entry.get("file") != name
        or not isinstance(entry.get("sha256"), str)
        or not _SHA256.match(entry["sha256"])
    ):
        raise bad(f"has an invalid weights entry {quote(entry)}")
    shapes = entry.get("shapes")
    if shapes is not None and not (  # absent in files written before it was recorded
        isinstance(shapes, list)
        and all(isinstance(s, list) and all(_is_int(d) and d >= 0 for d in s) for s in shapes)
    ):
        raise bad("has an invalid list of weight shapes")


def _check_top_down(m: dict, path: Path, bad) -> None:
    """A top-down model's section: the finder's input and weights, the frame, crop and limits."""
    td = m["top_down"]
    if not isinstance(td, dict) or m["architecture"]["name"] != "default":
        raise bad("has an invalid top_down section")
    for key, low, high in (("frame_size", 32, 4096), ("finder_size", 32, 1024),
                           ("crop_size", 32, 1024), ("max_objects", 1, MAX_OBJECTS)):  # fmt: skip
        if not _is_int(td.get(key)) or not low <= td[key] <= high:
            raise bad(f"has an invalid top_down {key} {quote(td.get(key))}")
    if td["crop_size"] != m["input_size"]:
        raise bad("says a top-down crop size other than the pose model's input size")
    sep = td.get("min_separation")
    if isinstance(sep, bool) or not isinstance(sep, int | float) or not 0 <= sep <= 1e5:
        raise bad(f"has an invalid top_down min_separation {quote(sep)}")
    try:
        check_architecture("default", {}, 1, td["finder_size"])
    except LayoutError as exc:
        raise misfit(path, m, f"finder input size {td['finder_size']}: {exc}") from None
    _check_weights_entry(td.get("finder_weights"), FINDER_WEIGHTS_NAME, bad)


def _is_int(v: Any) -> bool:  # JSON true/false must not pass for 1/0
    return isinstance(v, int) and not isinstance(v, bool)


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))
