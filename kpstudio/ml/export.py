"""Exports to other runtimes' formats, each checked by running it before it is handed over.

Every artifact is written into a scratch folder next to `out`, loaded back with the runtime
that will run it (Keras, TensorFlow, LiteRT, ONNX Runtime), run on sample images through the
same letterbox as the app, and compared with the in-app model in original image pixels. Only
an artifact that agrees within `tolerance_px` is moved to `out`, so a failed or inaccurate
conversion never leaves a file behind that someone could ship.

All exports keep the model contract: input (B, S, S, 3) float32 RGB 0..255 letterboxed,
output (B, K, 3) x, y in input pixels + confidence; normalisation is inside the model.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kpstudio.ml.predictor import Predictor

EXPORT_KINDS = ("keras", "savedmodel", "tflite", "tflite-fp16", "onnx")
_SUFFIX_KINDS = {".keras": "keras", ".tflite": "tflite", ".onnx": "onnx", "": "savedmodel"}
_ARTIFACT = {
    "keras": "model.keras",
    "savedmodel": "saved_model",
    "tflite": "model.tflite",
    "tflite-fp16": "model.tflite",
    "onnx": "model.onnx",
}


class ExportError(RuntimeError):
    """An export could not be made or did not match the in-app model; nothing was written."""


@dataclass
class ExportResult:
    path: Path
    kind: str
    max_px_diff: float  # over x, y of every keypoint of every sample, in original image pixels
    checked_on: int  # number of sample images
    note: str = ""  # which runtime checked it
    also: tuple[Path, ...] = ()  # files written beside `path` (a top-down model's finder, ...)


def export_model(
    model_file_or_predictor: str | os.PathLike | Predictor,
    out: str | os.PathLike,
    kind: str | None = None,
    sample_images: list[np.ndarray] | None = None,
    tolerance_px: float = 0.5,
) -> ExportResult:
    """Export a .kpmodel (or a loaded Predictor) to `out` and check it.

    `kind` defaults from the suffix: .keras, .tflite (float32), .onnx, none → SavedModel
    folder; "tflite-fp16" must be asked for. Raises ExportError with the reason, and leaves
    nothing at `out`, when conversion fails or the artifact disagrees with the app.
    """
    out = Path(out)
    kind = kind or _kind_from_suffix(out)
    if kind not in EXPORT_KINDS:
        raise ExportError(f"unknown export kind {kind!r}; choose one of {', '.join(EXPORT_KINDS)}")
    predictor = model_file_or_predictor
    if not isinstance(predictor, Predictor):
        predictor = Predictor.from_file(predictor)
    samples = sample_images if sample_images is not None else default_sample_images()
    if predictor.top_down:  # two networks and the pipeline that joins them
        from kpstudio.ml.export_top_down import export_top_down, top_down_paths

        diff, note = export_top_down(predictor, out, kind, samples, tolerance_px,
                                     _WRITERS[kind], _RUNNERS[kind], ExportError)  # fmt: skip
        return ExportResult(out, kind, diff, len(samples), note, top_down_paths(out)[1:])
    if out.is_dir() and not (out / "saved_model.pb").exists():
        # Replacing a folder means deleting it: only ever one of our own SavedModels.
        raise ExportError(
            f"{out}: is a folder that is not a SavedModel; kpstudio will not replace it"
        )
    expected = predictor.predict_arrays(samples)
    boxed = [predictor.letterbox(image) for image in samples]
    batch = np.stack([canvas for canvas, _ in boxed]).astype(np.float32)

    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".kpstudio-export-", dir=out.parent))
    try:
        artifact = scratch / _ARTIFACT[kind]
        try:
            _WRITERS[kind](predictor.model, artifact)
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(f"{out}: the {kind} converter failed: {_reason(exc)}") from exc
        try:
            raw, note = _RUNNERS[kind](artifact, batch)
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(
                f"{out}: the {kind} export was written but its runtime could not run it: "
                f"{_reason(exc)}"
            ) from exc
        diff = _max_px_diff(raw, boxed, expected, out, kind)
        if not diff <= tolerance_px:  # also catches NaN
            raise ExportError(
                f"{out}: the {kind} export disagrees with the app's model by up to {diff:.3g} px "
                f"(tolerance {tolerance_px} px) on {len(samples)} sample images; it was deleted"
            )
        _move_into_place(artifact, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ExportResult(out, kind, diff, len(samples), note)


def _kind_from_suffix(out: Path) -> str:
    suffix = out.suffix.lower() if not out.is_dir() else ""
    if suffix not in _SUFFIX_KINDS:
        raise ExportError(
            f"{out}: cannot tell the export format from {suffix!r}; use .keras, .tflite, .onnx "
            "or a folder name without a suffix (SavedModel)"
        )
    return _SUFFIX_KINDS[suffix]


def default_sample_images() -> list[np.ndarray]:
    """Deterministic synthetic RGB images of three shapes (wide, tall, square): smooth blobs
    plus noise, so the model's output varies and both letterbox paddings are exercised."""
    rng = np.random.default_rng(20240601)
    images = []
    for h, w in ((480, 640), (500, 300), (96, 96)):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        image = rng.normal(110, 25, (h, w, 3)).astype(np.float32)
        for _ in range(3):
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.05, 0.2) * min(h, w)
            blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
            image += blob[:, :, None] * rng.uniform(-120, 140, 3)
        images.append(np.clip(image, 0, 255).astype(np.uint8))
    return images


def with_project_images(paths, count: int = 3) -> list[np.ndarray]:
    """The synthetic samples plus up to `count` readable images of `paths` (a project's own):
    outputs like the real ones, and for a top-down model objects for the pipeline check to
    find. An image that cannot be read is skipped."""
    from kpstudio.core.image_reader import ImageReadError, read_image
    from kpstudio.ml.predictor import rgb_image

    samples = default_sample_images()
    for path in list(paths)[:count]:
        try:
            samples.append(rgb_image(read_image(path)))
        except (ImageReadError, ValueError):
            continue
    return samples


def _max_px_diff(raw, boxed, expected, out: Path, kind: str) -> float:
    raw = np.asarray(raw, dtype=np.float64)
    k = expected[0].xy.shape[0] if expected else 0
    if raw.shape != (len(boxed), k, 3):
        raise ExportError(f"{out}: the {kind} export outputs {raw.shape}, not {(len(boxed), k, 3)}")
    diffs = [
        np.abs(box.to_original(o[:, :2]) - pred.xy).max()
        for o, (_, box), pred in zip(raw, boxed, expected)
    ]
    return float(max(diffs)) if diffs else 0.0


def _move_into_place(artifact: Path, out: Path) -> None:
    if out.is_dir():
        shutil.rmtree(out)  # an old SavedModel (checked above); a folder cannot be os.replace'd
    os.replace(artifact, out)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


# --- writers: model → artifact at `path` --------------------------------------------------


def _write_keras(model: keras.Model, path: Path) -> None:
    model.save(path)  # holds our SoftArgmax by its registered name, no Lambda


def _write_savedmodel(model: keras.Model, path: Path) -> None:
    model.export(str(path), format="tf_saved_model", verbose=False)


def _tflite_bytes(model: keras.Model, fp16: bool) -> bytes:
    # Via a SavedModel: converting the concrete function directly gave NaN outputs here
    # (TF 2.21), the variables not being frozen. Builtin ops only, unlike Keras' own litert
    # export, so the file runs on any LiteRT runtime without the Flex (TF ops) delegate.
    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if fp16:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()


def _write_tflite(model: keras.Model, path: Path) -> None:
    path.write_bytes(_tflite_bytes(model, fp16=False))


def _write_tflite_fp16(model: keras.Model, path: Path) -> None:
    path.write_bytes(_tflite_bytes(model, fp16=True))


def _write_onnx(model: keras.Model, path: Path) -> None:
    for dist in ("tf2onnx", "onnx", "onnxruntime"):
        if _version(dist) == "?":
            raise ExportError(
                f"ONNX export needs the packages tf2onnx, onnx and onnxruntime (to check the "
                f"result), and {dist} is not installed; install it with pip install {dist}"
            )
    with warnings.catch_warnings():
        # Keras patches tf2onnx for numpy 2 by probing np.object, which warns on every export.
        warnings.simplefilter("ignore", FutureWarning)
        model.export(str(path), format="onnx", verbose=False)


_WRITERS: dict[str, Callable[[keras.Model, Path], None]] = {
    "keras": _write_keras,
    "savedmodel": _write_savedmodel,
    "tflite": _write_tflite,
    "tflite-fp16": _write_tflite_fp16,
    "onnx": _write_onnx,
}


# --- runners: artifact + letterboxed batch → (B, K, 3) with its own runtime -----------------


def _run_keras(path: Path, batch: np.ndarray):
    import kpstudio.ml.models  # noqa: F401  registers SoftArgmax for deserialisation

    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    note = f"reloaded with keras {keras.__version__} load_model(safe_mode=True)"
    return keras.ops.convert_to_numpy(loaded(batch, training=False)), note


def _run_savedmodel(path: Path, batch: np.ndarray):
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    outputs = serve(tf.constant(batch))
    note = f"tf.saved_model.load serving_default, tensorflow {tf.__version__}"
    return next(iter(outputs.values())).numpy(), note


def _run_tflite(path: Path, batch: np.ndarray):
    try:
        from ai_edge_litert.interpreter import Interpreter

        note = f"ai_edge_litert {_version('ai-edge-litert')} Interpreter"
    except ImportError:
        Interpreter = tf.lite.Interpreter  # noqa: N806
        note = f"tf.lite.Interpreter, tensorflow {tf.__version__} (ai-edge-litert not installed)"
    interpreter = Interpreter(model_path=str(path))
    source = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(source["index"], batch.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], batch)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]), note


def _run_onnx(path: Path, batch: np.ndarray):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: batch})
    return outputs[0], f"onnxruntime {onnxruntime.__version__} CPUExecutionProvider"


_RUNNERS = {
    "keras": _run_keras,
    "savedmodel": _run_savedmodel,
    "tflite": _run_tflite,
    "tflite-fp16": _run_tflite,
    "onnx": _run_onnx,
}
