"""Exporting a top-down model (a finder, then the pose model on a crop around each object): two
networks in the chosen format beside a JSON file that says how to join them.

One file cannot hold the step between the networks (peaks of the finder's centre map, then a
crop around each) in every runtime, so `OUT` is the pose model, `OUT.finder` (before the
suffix: `model.finder.onnx`) the finder returning its centre logits, and `OUT.topdown.json`
the pipeline: sizes, the peak rule and each step in words, with the files' names. Each network
is written, loaded back with its runtime and compared with the app's (the pose model's
keypoints in original pixels, the finder's centre probabilities), and the whole pipeline,
run with the exported networks and the same decoding as the app (ml/topdown.TopDownRunner),
must find the same objects as the app on the sample images. Only then are the three files
moved into place, so a failed export leaves none of them.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from kpstudio.ml.topdown import FINDER_STRIDE, TopDownRunner, crop_at

FINDER_TOLERANCE = 0.02  # largest difference in a centre probability the export may show


def top_down_paths(out: Path) -> tuple[Path, Path, Path]:
    """(pose, finder, pipeline JSON) paths of an export to `out`."""
    suffix = out.suffix
    stem = out.name[: len(out.name) - len(suffix)] if suffix else out.name
    return out, out.with_name(f"{stem}.finder{suffix}"), out.with_name(f"{stem}.topdown.json")


def pipeline_description(predictor, pose_name: str, finder_name: str, kind: str) -> dict:
    """What a program needs to run the two exported networks as the app does."""
    r = predictor.runner
    return {
        "format": "kpstudio-top-down", "version": 1, "kind": kind,
        "keypoints": list(predictor.skeleton.keypoints),
        "pose": pose_name, "finder": finder_name,
        "frame_size": r.frame_size, "finder_size": r.finder_size, "crop_size": r.crop,
        "finder_stride": FINDER_STRIDE, "peak_threshold": r.threshold,
        "max_objects": r.max_objects, "min_separation_px": r.min_separation,
        "inputs": "float32 RGB 0..255, (B, side, side, 3); normalisation is inside the networks",
        "steps": [
            "letterbox the frame to frame_size × frame_size: scale its longer side to "
            "frame_size, centre it, pad with zeros (the canvas)",
            "resize the canvas to finder_size × finder_size (area interpolation) and run the "
            "finder: (B, h, w, 1) centre logits; probability = sigmoid(logit)",
            "objects: cells that are the maximum of their 3×3 neighbourhood with probability ≥ "
            "peak_threshold, strongest first; each centre is its 3×3 neighbourhood's "
            "probability-weighted mean cell, (cell + 0.5) × finder_stride finder pixels, times "
            "frame_size / finder_size canvas pixels; a centre closer than min_separation_px "
            "(canvas pixels) to a stronger one is dropped; at most max_objects",
            "for each object, the crop_size × crop_size window of the canvas whose top-left "
            "corner is round(centre − crop_size / 2), zeros outside the canvas; run the pose "
            "model: (n, K, 3) x, y in crop pixels (pixel corners: a pixel's centre is +0.5) "
            "and a confidence per keypoint",
            "keypoints: x, y plus the crop's corner, in canvas pixels; undo the letterbox for "
            "frame pixels. An object's score: its centre probability × the mean confidence",
        ],
    }


def export_top_down(predictor, out: Path, kind: str, samples: list[np.ndarray],
                    tolerance_px: float, write, run, error):  # fmt: skip
    """Write, check and move into place the three files (see the module docstring).
    `write(model, path)` / `run(path, batch) -> (outputs, note)`: the format's own writer and
    runtime (kpstudio.ml.export); `error(message)`: the ExportError to raise.
    Returns (max px difference, note)."""
    pose_out, finder_out, json_out = top_down_paths(out)
    for path in (pose_out, finder_out):
        if path.is_dir() and not (path / "saved_model.pb").exists():
            raise error(f"{path}: is a folder that is not a SavedModel; kpstudio will not "
                        "replace it")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".kpstudio-export-", dir=out.parent))
    try:
        pose_file, finder_file = scratch / "pose", scratch / "finder"
        for model, path, what in ((predictor.pose_model, pose_file, "pose model"),
                                  (predictor.finder_heat, finder_file, "finder")):  # fmt: skip
            try:
                side = model.input_shape[1]
                model(np.zeros((1, side, side, 3), np.float32))  # Keras' ONNX export wants a call
                write(model, path)
            except Exception as exc:
                raise error(f"{out}: the {kind} converter failed on the {what}: "
                            f"{type(exc).__name__}: {exc}"[:600]) from exc  # fmt: skip
        diff, note = _check(predictor, samples, pose_file, finder_file, run, out, kind, error)
        if not diff <= tolerance_px:
            raise error(f"{out}: the {kind} export disagrees with the app's model by up to "
                        f"{diff:.3g} px (tolerance {tolerance_px} px); it was deleted")  # fmt: skip
        description = pipeline_description(predictor, pose_out.name, finder_out.name, kind)
        (scratch / "pipeline.json").write_text(json.dumps(description, indent=2))
        for src, dst in ((pose_file, pose_out), (finder_file, finder_out),
                         (scratch / "pipeline.json", json_out)):  # fmt: skip
            if dst.is_dir():
                shutil.rmtree(dst)  # an old SavedModel (checked above)
            src.replace(dst)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return diff, note


def _check(predictor, samples, pose_file, finder_file, run, out, kind, error):
    """(max px difference, note): each network against the app's, then the whole pipeline."""
    r = predictor.runner
    canvases = np.stack([predictor.letterbox(image)[0] for image in samples])
    small = np.stack([cv2.resize(c, (r.finder_size, r.finder_size), interpolation=cv2.INTER_AREA)
                      if r.finder_size != r.frame_size else c for c in canvases])  # fmt: skip
    small = small.astype(np.float32)
    got, note = run(finder_file, small)
    want = np.asarray(r.finder_heat(small))
    finder_diff = float(np.max(np.abs(_sigmoid(got) - _sigmoid(want)))) if want.size else 0.0
    if got.shape != want.shape or not finder_diff <= FINDER_TOLERANCE:
        raise error(f"{out}: the {kind} finder disagrees with the app's: centre probabilities "
                    f"differ by up to {finder_diff:.3g} (tolerance {FINDER_TOLERANCE}), outputs "
                    f"{got.shape} vs {want.shape}; nothing was written")  # fmt: skip
    # The pose model on a crop at the middle of every sample canvas: its own pixels.
    middle = (r.frame_size / 2.0, r.frame_size / 2.0)
    crops = np.stack([crop_at(c, middle, r.crop)[0] for c in canvases]).astype(np.float32)
    got_pose, _ = run(pose_file, crops)
    want_pose = np.asarray(r.pose(crops))
    if got_pose.shape != want_pose.shape:
        raise error(f"{out}: the {kind} pose model outputs {got_pose.shape}, not "
                    f"{want_pose.shape}; nothing was written")  # fmt: skip
    # Canvas pixels → the sample's own pixels (the letterbox's scale).
    scale = np.array([max(image.shape[:2]) / r.frame_size for image in samples])
    diff = float(np.max(np.abs(got_pose[..., :2] - want_pose[..., :2]).max(axis=(1, 2)) * scale))
    # The pipeline with the exported networks finds what the app finds.
    exported = TopDownRunner(lambda b: run(finder_file, np.asarray(b))[0],
                             lambda b: run(pose_file, np.asarray(b))[0], r.frame_size,
                             r.finder_size, r.crop, r.max_objects, r.min_separation,
                             r.threshold)  # fmt: skip
    objects = 0
    for mine, theirs, k in zip(r.run(canvases), exported.run(canvases), scale):
        objects += len(mine)
        if len(mine) != len(theirs):
            raise error(f"{out}: the {kind} export finds {len(theirs)} object(s) on a sample "
                        f"image where the app finds {len(mine)}; nothing was written")  # fmt: skip
        for a, b in zip(mine, theirs):
            diff = max(diff, float(np.max(np.abs(a.xy - b.xy))) * k)
    return diff, (f"{note}; finder centre probabilities within {finder_diff:.2g}; the exported "
                  f"pipeline found the app's {objects} object(s)")


def _sigmoid(x) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))
