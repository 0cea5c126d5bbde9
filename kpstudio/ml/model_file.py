"""The `.kpmodel` file: a zip holding `manifest.json` and `model.weights.h5`, nothing else.

Loading rebuilds the network from our own code (`build_model` with the manifest's architecture
name and parameters) and then loads plain weight arrays into it. Nothing in the file is ever
deserialised as code: no Keras config, no Lambda, no pickle. That is why foreign model files
(.keras, .h5, SavedModel) are refused outright rather than "loaded safely".

`read_manifest` needs no TensorFlow, so the CLI and the GUI can show what a model file is
without paying for the import.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import warnings
import zipfile
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpstudio.core.regular_files import FileRefused, open_regular
from kpstudio.core.skeleton import Skeleton
from kpstudio.ml.model_manifest import (
    FINDER_WEIGHTS_NAME,
    FORMAT,
    FORMAT_VERSION,
    KNOWN_ARCHITECTURES,
    MANIFEST_NAME,
    WEIGHTS_NAME,
    ModelFileError,
    check_manifest,
    misfit,
)
from kpstudio.ml.weight_layout import expected_weight_shapes

if TYPE_CHECKING:
    import keras

__all__ = ["FORMAT", "FORMAT_VERSION", "KNOWN_ARCHITECTURES", "MANIFEST_NAME", "WEIGHTS_NAME",
           "ModelFileError", "load_model_file", "load_top_down_file", "read_manifest",
           "save_model_file"]  # fmt: skip

# Zip-bomb guards. The seed model at a 256 px input has ~1 G parameters (4 GiB of float32), so
# the weights limit is generous; the ratio limit is what stops a bomb: float weights barely
# compress (we store them uncompressed), while a bomb expands by 1000x or more.
MAX_MANIFEST_BYTES = 1 << 20
MAX_WEIGHTS_BYTES = 8 << 30
MAX_COMPRESSION_RATIO = 20
# What the zip may use: stored or deflated members (all Python's zipfile writes), general-purpose
# flags for deflate's options, a trailing data descriptor and UTF-8 names. Anything else
# (encryption, patches, other methods) zipfile cannot or must not unpack.
ALLOWED_COMPRESSION = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
ALLOWED_FLAG_BITS = 0x0002 | 0x0004 | 0x0008 | 0x0800
# HDF5's own bookkeeping beyond the raw float32 arrays: a header plus a little per array.
WEIGHTS_OVERHEAD_BYTES = 1 << 20
WEIGHTS_OVERHEAD_PER_ARRAY = 16 << 10
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

PREPROCESSING = {
    "letterbox": "centered, black padding",
    "color": "RGB",
    "range": [0, 255],
    "coordinates": "pixel corners",
}
OUTPUT = "(B, K, 3): x, y in input pixels, confidence"


def save_model_file(
    path: str | os.PathLike,
    model: keras.Model,
    *,
    arch: str,
    params: dict,
    input_size: int,
    skeleton: Skeleton,
    metrics: dict | None = None,
    extra: dict | None = None,
    finder: keras.Model | None = None,
    top_down: dict | None = None,
) -> Path:
    """Write `model` as a .kpmodel at `path` (atomically: a crash leaves the old file or none).

    A top-down model also gives its `finder` (a one-keypoint default model) and `top_down`
    (frame_size, finder_size, crop_size, max_objects, min_separation); `model` is then the pose
    model, whose input is the crop."""
    import keras
    import numpy as np
    import tensorflow as tf

    import kpstudio

    path = Path(path)
    k = len(skeleton)
    if tuple(model.output_shape[1:]) != (k, 3):
        raise ValueError(
            f"the model outputs {model.output_shape}, not (B, {k}, 3) for {k} keypoints"
        )
    if tuple(model.input_shape[1:]) != (input_size, input_size, 3):
        raise ValueError(f"the model takes {model.input_shape}, not {input_size}x{input_size}x3")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".kpmodel-", dir=path.parent) as tmp:
        weights = Path(tmp, WEIGHTS_NAME)
        model.save_weights(weights)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "skeleton": skeleton.to_dict(),
            "num_keypoints": k,
            "architecture": {"name": arch, "params": dict(params)},
            "input_size": int(input_size),
            "preprocessing": PREPROCESSING,
            "output": OUTPUT,
            "metrics": dict(metrics or {}),
            "versions": {
                "kpstudio": kpstudio.__version__,
                "tensorflow": tf.__version__,
                "keras": keras.__version__,
                "numpy": np.__version__,
            },
            # The weight layout, checked before loading: an architecture whose code changed
            # since the file was written is refused, never half-loaded.
            "weights": {
                "file": WEIGHTS_NAME,
                "sha256": _sha256_file(weights),
                "shapes": _weight_shapes(model),
            },
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        clash = sorted(set(extra or {}) & set(manifest))
        if clash:
            raise ValueError(f"extra manifest keys {clash} would overwrite kpstudio's own fields")
        manifest.update(extra or {})
        if finder is not None:
            finder_weights = Path(tmp, FINDER_WEIGHTS_NAME)
            finder.save_weights(finder_weights)
            manifest["top_down"] = {**(top_down or {}), "finder_weights": {
                "file": FINDER_WEIGHTS_NAME, "sha256": _sha256_file(finder_weights),
                "shapes": _weight_shapes(finder)}}  # fmt: skip
        text = json.dumps(manifest, indent=2, default=_json_default)
        check_manifest(json.loads(text), path)  # never write a file we would refuse to load
        staged = Path(tmp, path.name)
        with zipfile.ZipFile(staged, "w") as zf:
            zf.writestr(MANIFEST_NAME, text, compress_type=zipfile.ZIP_DEFLATED)
            # Stored, not deflated: float weights hardly compress and loading stays fast.
            zf.write(weights, WEIGHTS_NAME, compress_type=zipfile.ZIP_STORED)
            if finder is not None:
                zf.write(finder_weights, FINDER_WEIGHTS_NAME, compress_type=zipfile.ZIP_STORED)
        os.replace(staged, path)
    return path


def read_manifest(path: str | os.PathLike) -> dict:
    """The validated manifest of a .kpmodel file (no TensorFlow needed)."""
    path = Path(path)
    with _open_zip(path) as zf:
        return _read_checked_manifest(zf, path)


def load_model_file(path: str | os.PathLike) -> tuple[dict, keras.Model]:
    """(manifest, model): the model rebuilt from our code, with the file's verified weights.
    For a top-down file the model is its pose model (see load_top_down_file)."""
    path = Path(path)
    with _open_zip(path) as zf:
        manifest = _read_checked_manifest(zf, path)
        arch = manifest["architecture"]
        model = _load_weights(zf, path, manifest, manifest["weights"], arch["name"],
                              arch["params"], manifest["num_keypoints"], manifest["input_size"])
    return manifest, model


def load_top_down_file(path: str | os.PathLike) -> tuple[dict, keras.Model, keras.Model]:
    """(manifest, pose model, finder) of a top-down model file."""
    path = Path(path)
    manifest, pose = load_model_file(path)
    td = manifest.get("top_down")
    if td is None:
        raise ModelFileError(f"{path}: this model finds one object per image; it has no finder")
    with _open_zip(path) as zf:
        finder = _load_weights(zf, path, manifest, td["finder_weights"], "default", {}, 1,
                               td["finder_size"])  # fmt: skip
    return manifest, pose, finder


def _load_weights(zf, path: Path, manifest: dict, entry: dict, arch: str, params: dict, k: int,
                  input_size: int) -> keras.Model:  # fmt: skip
    """Build `arch` from our code and load the weights member `entry` names, checked against
    its hash and the shapes the architecture has."""
    from kpstudio.ml.models import build_model  # TensorFlow only once the file looks right

    member = entry["file"]
    with tempfile.TemporaryDirectory(prefix="kpmodel-") as tmp:
        weights = Path(tmp, member)  # our fixed name, never one from the file
        digest = hashlib.sha256()
        try:
            with zf.open(member) as src, weights.open("wb") as dst:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    digest.update(chunk)
                    dst.write(chunk)
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:  # zip's own CRC check
            raise ModelFileError(
                f"{path}: the model weights cannot be unpacked ({exc}); the file is damaged "
                "or was altered"
            ) from None
        if digest.hexdigest() != entry["sha256"]:
            raise ModelFileError(
                f"{path}: the model weights do not match their hash in the manifest; the "
                "file is damaged or was altered"
            )
        # The shapes the file records must be those the architecture has, checked before a
        # layer is built (the parameters were bounded by check_manifest).
        expected = expected_weight_shapes(arch, params, k, input_size)
        saved = entry.get("shapes")
        if saved is not None and sorted(saved) != sorted(expected):
            raise misfit(path, manifest, f"{len(saved)} weight arrays saved, {len(expected)} "
                         "expected, of other shapes")  # fmt: skip
        try:
            model = build_model(arch, k, input_size, **params)
        except (TypeError, ValueError) as exc:
            raise misfit(path, manifest, str(exc).strip().splitlines()[0]) from None
        if saved is not None and saved != _weight_shapes(model):
            raise misfit(path, manifest, f"{len(saved)} weight arrays saved, "
                         f"{len(model.weights)} built, of other shapes")  # fmt: skip
        try:
            # Keras only warns when part of a model finds no weights in the file (that part
            # keeps its random initial values): an error here.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model.load_weights(weights)
        except (TypeError, ValueError, KeyError, OSError) as exc:
            raise misfit(path, manifest, str(exc).strip().splitlines()[0]) from None
        if caught:
            raise misfit(path, manifest, str(caught[0].message).strip().splitlines()[0])
    return model


def _weight_shapes(model: keras.Model) -> list[list[int]]:
    return [[int(d) for d in w.shape] for w in model.weights]


def _open_zip(path: Path) -> zipfile.ZipFile:
    """Open `path` as a kpstudio model zip, refusing anything else with a message saying what
    it is; member names and sizes are checked before a byte is extracted."""
    foreign = (
        "kpstudio only loads its own .kpmodel files and never loads foreign model files, "
        "because loading them could run code hidden inside them"
    )
    if path.is_dir():
        what = (
            "a TensorFlow SavedModel folder" if (path / "saved_model.pb").exists() else "a folder"
        )
        raise ModelFileError(f"{path}: this is {what}, not a kpstudio model file; {foreign}")
    try:
        with open_regular(path) as fp:  # a named pipe or a device is refused, never read
            head = fp.read(8)
        zf = zipfile.ZipFile(path)
    except FileRefused as exc:
        raise ModelFileError(f"{exc}; it is not a kpstudio model file") from None
    except FileNotFoundError:
        raise ModelFileError(f"{path}: the model file does not exist") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: the model file could not be read ({exc})") from None
    except (UnicodeDecodeError, ValueError, NotImplementedError, EOFError) as exc:
        # A member name flagged UTF-8 that is not, a damaged central directory ...
        raise ModelFileError(
            f"{path}: the zip archive is damaged or malformed ({exc}); it is not a usable "
            "kpstudio model file"
        ) from None
    except zipfile.BadZipFile:
        if head.startswith(_HDF5_MAGIC):
            what = "an HDF5 (Keras .h5) model file"
        elif head[4:8] == b"TFL3":
            what = "a TensorFlow Lite model"
        elif path.suffix.lower() == ".onnx":
            what = "an ONNX model"
        else:
            what = "a file of another kind (not even a zip archive)"
        raise ModelFileError(
            f"{path}: this is {what}, not a kpstudio model file; {foreign}"
        ) from None
    try:
        _check_members(zf, path, foreign)
    except BaseException:
        zf.close()
        raise
    return zf


def _check_members(zf: zipfile.ZipFile, path: Path, foreign: str) -> None:
    infos = zf.infolist()
    names = [i.filename for i in infos]
    if "config.json" in names or "metadata.json" in names:
        raise ModelFileError(
            f"{path}: this is a Keras model archive (.keras), not a kpstudio model file; {foreign}"
        )
    # A top-down model also holds its finder's weights.
    allowed = (sorted([MANIFEST_NAME, WEIGHTS_NAME]),
               sorted([MANIFEST_NAME, WEIGHTS_NAME, FINDER_WEIGHTS_NAME]))
    if sorted(names) not in allowed:
        listed = ", ".join(repr(n) for n in names[:10]) + (" ..." if len(names) > 10 else "")
        raise ModelFileError(
            f"{path}: a kpstudio model file holds exactly {MANIFEST_NAME!r} and {WEIGHTS_NAME!r} "
            f"(and {FINDER_WEIGHTS_NAME!r} for a top-down model), but this one holds {listed}; "
            f"{foreign}"
        )
    for info in infos:
        limit = MAX_MANIFEST_BYTES if info.filename == MANIFEST_NAME else MAX_WEIGHTS_BYTES
        if info.flag_bits & 0x1:
            raise ModelFileError(f"{path}: {info.filename!r} is encrypted")
        if info.compress_type not in ALLOWED_COMPRESSION or info.flag_bits & ~ALLOWED_FLAG_BITS:
            raise ModelFileError(
                f"{path}: {info.filename!r} uses zip compression method {info.compress_type} "
                f"with flags 0x{info.flag_bits:04x}; kpstudio model files are stored or "
                "deflated, and nothing else is unpacked"
            )
        if info.file_size > limit:
            raise ModelFileError(
                f"{path}: {info.filename!r} claims {info.file_size:,} bytes, more than the limit "
                f"of {limit:,}"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > (1 << 20) and ratio > MAX_COMPRESSION_RATIO:
            raise ModelFileError(
                f"{path}: {info.filename!r} would expand {ratio:.0f}-fold when unpacked; "
                "kpstudio refuses it (it could be a zip bomb)"
            )


def _read_checked_manifest(zf: zipfile.ZipFile, path: Path) -> dict:
    try:
        with zf.open(MANIFEST_NAME) as fp:
            raw = fp.read(MAX_MANIFEST_BYTES + 1)  # bounded even if the header lied
        manifest = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ModelFileError(f"{path}: the manifest is nested too deeply to be ours") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error) as exc:
        # ValueError: not UTF-8, not JSON, or an integer of more than 4300 digits.
        raise ModelFileError(f"{path}: the manifest cannot be read ({exc})") from None
    check_manifest(manifest, path)
    arch, td = manifest["architecture"], manifest.get("top_down")
    has_finder = FINDER_WEIGHTS_NAME in zf.namelist()
    if has_finder != (td is not None):
        raise ModelFileError(f"{path}: the finder's weights and the manifest's top_down "
                             "section come together or not at all")  # fmt: skip
    members = [(WEIGHTS_NAME, arch["name"], arch["params"], manifest["num_keypoints"],
                manifest["input_size"])]  # fmt: skip
    if td is not None:
        members.append((FINDER_WEIGHTS_NAME, "default", {}, 1, td["finder_size"]))
    for member, name, params, k, size in members:
        shapes = expected_weight_shapes(name, params, k, size)
        most = 4 * sum(math.prod(s) for s in shapes)
        most += WEIGHTS_OVERHEAD_BYTES + WEIGHTS_OVERHEAD_PER_ARRAY * len(shapes)
        if zf.getinfo(member).file_size > most:
            raise misfit(path, manifest, f"{member!r} holds {zf.getinfo(member).file_size:,} "
                         f"bytes, more than the {most:,} these weights can take")  # fmt: skip
    return manifest


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fp:
        for chunk in iter(lambda: fp.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _json_default(value: Any) -> Any:
    # Metrics arrive as numpy scalars/arrays from the evaluation code.
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} cannot be stored in a model manifest")
