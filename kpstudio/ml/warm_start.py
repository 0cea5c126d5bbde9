"""Starting a run from a trained model's weights (`kpstudio train --from RUN`, Assist).

A new run warm-started from the active model learns the labels added since in a fraction of
the time a fresh one needs. The weights must fit: same architecture and parameters, same
keypoints in the same order, single-object or top-down alike; anything else is refused with
the reason before training starts. The input size may differ (the models are fully
convolutional).
"""

from __future__ import annotations

from pathlib import Path

from kpstudio.ml.model_file import load_model_file, load_top_down_file, read_manifest
from kpstudio.ml.weight_layout import WEIGHTLESS_PARAMS


def check_warm_start(path: str | Path, arch: str, params: dict, keypoints, top_down: bool) -> dict:
    """The model file's manifest, or ValueError saying why its weights cannot start this run."""
    manifest = read_manifest(path)
    theirs = manifest["architecture"]
    why = None
    if theirs["name"] != arch:
        why = f"it is a {theirs['name']!r} model, this run trains {arch!r}"
    elif _weighted(theirs["params"]) != _weighted(params):
        why = f"its parameters {theirs['params']} differ from this run's {params}"
    elif tuple(manifest["skeleton"]["keypoints"]) != tuple(keypoints):
        why = "it was trained on other keypoints (the skeleton changed since)"
    elif ("top_down" in manifest) != bool(top_down):
        kinds = ("finds several objects", "finds one object")
        why = f"it {kinds[0] if 'top_down' in manifest else kinds[1]} per image, this run not"
    if why:
        raise ValueError(f"{path}: cannot start this run from that model: {why}")
    return manifest


def _weighted(params: dict) -> dict:
    """The parameters that shape the weights: a run chooses its heatmap reading ("peak",
    "relations") anew."""
    return {k: v for k, v in dict(params).items() if k not in WEIGHTLESS_PARAMS}


def load_warm_start(path: str | Path, model=None, pose=None, finder=None) -> None:
    """Copy the file's weights into `model` (single object) or `pose` and `finder`."""
    if finder is not None:
        _, saved_pose, saved_finder = load_top_down_file(path)
        pose.set_weights(saved_pose.get_weights())
        finder.set_weights(saved_finder.get_weights())
    else:
        _, saved = load_model_file(path)
        model.set_weights(saved.get_weights())
