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
import re
import tempfile
import warnings
import zipfile
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpstudio.core.regular_files import FileRefused, open_regular, quote
from kpstudio.core.skeleton import Skeleton, SkeletonError
from kpstudio.ml.weight_layout import LayoutError, check_architecture, expected_weight_shapes

if TYPE_CHECKING:
    import keras

FORMAT = "kpstudio-model"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
WEIGHTS_NAME = "model.weights.h5"
# Mirrors kpstudio.ml.models.ARCHITECTURES (a test keeps them equal): importing models would
# import TensorFlow, and read_manifest must stay cheap.
KNOWN_ARCHITECTURES = ("default", "seed")

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
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

PREPROCESSING = {
    "letterbox": "centered, black padding",
    "color": "RGB",
    "range": [0, 255],
    "coordinates": "pixel corners",
}
OUTPUT = "(B, K, 3): x, y in input pixels, confidence"


class ModelFileError(ValueError):
    """A file is not a usable kpstudio model file; the message names the file and the problem."""


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
) -> Path:
    """Write `model` as a .kpmodel at `path` (atomically: a crash leaves the old file or none)."""
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
        text = json.dumps(manifest, indent=2, default=_json_default)
        _check_manifest(json.loads(text), path)  # never write a file we would refuse to load
        staged = Path(tmp, path.name)
        with zipfile.ZipFile(staged, "w") as zf:
            zf.writestr(MANIFEST_NAME, text, compress_type=zipfile.ZIP_DEFLATED)
            # Stored, not deflated: float weights hardly compress and loading stays fast.
            zf.write(weights, WEIGHTS_NAME, compress_type=zipfile.ZIP_STORED)
        os.replace(staged, path)
    return path


def read_manifest(path: str | os.PathLike) -> dict:
    """The validated manifest of a .kpmodel file (no TensorFlow needed)."""
    path = Path(path)
    with _open_zip(path) as zf:
        return _read_checked_manifest(zf, path)


def load_model_file(path: str | os.PathLike) -> tuple[dict, keras.Model]:
    """(manifest, model): the model rebuilt from our code, with the file's verified weights."""
    path = Path(path)
    with _open_zip(path) as zf:
        manifest = _read_checked_manifest(zf, path)
        from kpstudio.ml.models import build_model  # TensorFlow only once the file looks right

        arch = manifest["architecture"]
        with tempfile.TemporaryDirectory(prefix="kpmodel-") as tmp:
            weights = Path(tmp, WEIGHTS_NAME)  # our fixed name, never the member's
            digest = hashlib.sha256()
            try:
                with zf.open(WEIGHTS_NAME) as src, weights.open("wb") as dst:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        digest.update(chunk)
                        dst.write(chunk)
            except (zipfile.BadZipFile, EOFError, zlib.error) as exc:  # zip's own CRC check
                raise ModelFileError(
                    f"{path}: the model weights cannot be unpacked ({exc}); the file is damaged "
                    "or was altered"
                ) from None
            if digest.hexdigest() != manifest["weights"]["sha256"]:
                raise ModelFileError(
                    f"{path}: the model weights do not match their hash in the manifest; the "
                    "file is damaged or was altered"
                )

            def misfit(problem: str) -> ModelFileError:
                return _misfit(path, manifest, problem)

            # The shapes the file records must be those the architecture has, checked before a
            # layer is built (the parameters were bounded by _check_manifest).
            expected = expected_weight_shapes(
                arch["name"], arch["params"], manifest["num_keypoints"], manifest["input_size"]
            )
            saved = manifest["weights"].get("shapes")
            if saved is not None and sorted(saved) != sorted(expected):
                raise misfit(f"{len(saved)} weight arrays saved, {len(expected)} expected, "
                             "of other shapes")  # fmt: skip
            try:
                model = build_model(
                    arch["name"], manifest["num_keypoints"], manifest["input_size"],
                    **arch["params"],
                )  # fmt: skip
            except (TypeError, ValueError) as exc:
                raise misfit(str(exc).strip().splitlines()[0]) from None
            if saved is not None and saved != _weight_shapes(model):
                raise misfit(f"{len(saved)} weight arrays saved, {len(model.weights)} built, "
                             "of other shapes")  # fmt: skip
            try:
                # Keras only warns when part of a model finds no weights in the file (that part
                # keeps its random initial values): an error here.
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    model.load_weights(weights)
            except (TypeError, ValueError, KeyError, OSError) as exc:
                raise misfit(str(exc).strip().splitlines()[0]) from None
            if caught:
                raise misfit(str(caught[0].message).strip().splitlines()[0])
    return manifest, model


def _misfit(path: Path, manifest: dict, problem: str) -> ModelFileError:
    arch = manifest["architecture"]
    return ModelFileError(
        f"{path}: the weights do not fit a {arch['name']!r} model with parameters "
        f"{quote(arch['params'])} ({problem}); the file was probably made by another "
        "kpstudio version: open it with that version, or train the model again"
    )


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
    if sorted(names) != sorted([MANIFEST_NAME, WEIGHTS_NAME]):
        listed = ", ".join(repr(n) for n in names[:10]) + (" ..." if len(names) > 10 else "")
        raise ModelFileError(
            f"{path}: a kpstudio model file holds exactly {MANIFEST_NAME!r} and {WEIGHTS_NAME!r}, "
            f"but this one holds {listed}; {foreign}"
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
    _check_manifest(manifest, path)
    weights = zf.getinfo(WEIGHTS_NAME)
    shapes = expected_weight_shapes(
        manifest["architecture"]["name"], manifest["architecture"]["params"],
        manifest["num_keypoints"], manifest["input_size"],
    )  # fmt: skip
    most = 4 * sum(math.prod(s) for s in shapes)
    most += WEIGHTS_OVERHEAD_BYTES + WEIGHTS_OVERHEAD_PER_ARRAY * len(shapes)
    if weights.file_size > most:
        raise _misfit(
            path, manifest, f"{WEIGHTS_NAME!r} holds {weights.file_size:,} bytes, more than the "
            f"{most:,} these weights can take",
        )  # fmt: skip
    return manifest


def _check_manifest(m: Any, path: Path) -> None:
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
        isinstance(key, str) and key.isidentifier() and _is_scalar(v) for key, v in params.items()
    ):
        raise bad(f"has invalid architecture parameters {quote(params)}")
    size = m.get("input_size")
    if not _is_int(size) or not 8 <= size <= 4096:
        raise bad(f"has an invalid input_size {quote(size)}")
    try:  # bounded before anything is built from them
        check_architecture(arch["name"], params, k, size)
    except LayoutError as exc:
        raise _misfit(path, m, f"input size {size}: {exc}") from None
    weights = m.get("weights")
    if (
        not isinstance(weights, dict)
        or weights.get("file") != WEIGHTS_NAME
        or not isinstance(weights.get("sha256"), str)
        or not _SHA256.match(weights["sha256"])
    ):
        raise bad(f"has an invalid weights entry {quote(weights)}")
    shapes = weights.get("shapes")
    if shapes is not None and not (  # absent in files written before it was recorded
        isinstance(shapes, list)
        and all(isinstance(s, list) and all(_is_int(d) and d >= 0 for d in s) for s in shapes)
    ):
        raise bad("has an invalid list of weight shapes")
    if not isinstance(m.get("metrics", {}), dict):
        raise bad("has metrics that are not a mapping")


def _is_int(v: Any) -> bool:  # JSON true/false must not pass for 1/0
    return isinstance(v, int) and not isinstance(v, bool)


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


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
