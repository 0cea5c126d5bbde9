"""Cheap features of an image's content, for telling near-duplicates from new scenes.

Choosing which image to label next (kpstudio.core.suggest) needs a distance between images
before any model exists. A 16×16 grayscale thumbnail (mean removed, scaled to unit length)
says where things are; a 16-bin intensity histogram (square-rooted, so two histograms compare
like the Hellinger distance) says what the lighting is. Both come from OpenCV in a few ms an
image, TensorFlow-free. Consecutive video frames land next to each other; a new arena, a new
light or a new pose of a large animal lands far away.

Features are cached in `<project>/.kpstudio-cache/image-features-v1.npz`, keyed by image id,
file size and modification time, so a second `kpstudio suggest` reads no image again. The
cache is a sidecar rather than a table so that a read-only open (the CLI while the studio
holds the project) can fill it too; it is written whole or not at all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from kpstudio.core.image_reader import ImageReadError, read_image

THUMB = 16
BINS = 16
DIM = THUMB * THUMB + BINS
CACHE_DIR = ".kpstudio-cache"
CACHE_NAME = "image-features-v1.npz"
HISTOGRAM_WEIGHT = 0.5  # the thumbnail says more about a scene than its lighting does


def features_of(image: np.ndarray) -> np.ndarray:
    """The feature vector (DIM,) of an HxWx3 (or HxW) uint8 image."""
    if image.size == 0:
        raise ValueError("an empty image has no features")
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    thumb = cv2.resize(gray, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)
    thumb = thumb.ravel() - thumb.mean()
    norm = float(np.linalg.norm(thumb))
    thumb = thumb / norm if norm > 1e-6 else thumb  # a flat image stays all zeros
    hist = cv2.calcHist([gray], [0], None, [BINS], [0, 256]).ravel()
    hist = np.sqrt(hist / max(float(hist.sum()), 1.0)).astype(np.float32)
    return np.concatenate([thumb, HISTOGRAM_WEIGHT * hist]).astype(np.float32)


def _key(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def cache_path(project_folder: str | os.PathLike) -> Path:
    return Path(project_folder) / CACHE_DIR / CACHE_NAME


def image_features(
    ids: Sequence[int], paths: Sequence[Path], cache: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:  # fmt: skip
    """(N, DIM) features of the images, NaN rows for the unreadable; from `cache` where an
    image's id, size and modification time match, computed (and cached) otherwise."""
    known = _read_cache(cache) if cache else {}
    out = np.full((len(ids), DIM), np.nan, dtype=np.float32)
    fresh: dict[int, tuple[int, int, np.ndarray]] = {}
    for i, (image_id, path) in enumerate(zip(ids, paths)):
        if should_stop is not None and should_stop():
            raise InterruptedError("stopped while reading images")
        try:
            key = _key(Path(path))
        except OSError:
            continue  # a missing file: no features, never suggested
        hit = known.get(int(image_id))
        if hit is not None and hit[:2] == key:
            out[i] = hit[2]
        else:
            try:
                out[i] = features_of(read_image(path))
            except (ImageReadError, OSError, ValueError):
                continue
            fresh[int(image_id)] = (*key, out[i])
        if progress is not None and (i % 16 == 15 or i == len(ids) - 1):
            progress(i + 1, len(ids))
    if cache and fresh:
        known.update(fresh)
        _write_cache(cache, known)
    return out


def _read_cache(cache: Path) -> dict[int, tuple[int, int, np.ndarray]]:
    try:
        with np.load(cache) as data:
            ids, sizes, mtimes, feats = data["ids"], data["sizes"], data["mtimes"], data["feats"]
    except (OSError, ValueError, KeyError):  # none yet, or damaged: computed again
        return {}
    if feats.ndim != 2 or feats.shape[1] != DIM:
        return {}
    return {int(i): (int(s), int(m), f) for i, s, m, f in zip(ids, sizes, mtimes, feats)}


def _write_cache(cache: Path, entries: dict[int, tuple[int, int, np.ndarray]]) -> None:
    ids = sorted(entries)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp.npz")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, ids=np.array(ids, dtype=np.int64),
                 sizes=np.array([entries[i][0] for i in ids], dtype=np.int64),
                 mtimes=np.array([entries[i][1] for i in ids], dtype=np.int64),
                 feats=np.stack([entries[i][2] for i in ids]).astype(np.float32))  # fmt: skip
        os.replace(tmp, cache)
    except OSError:  # a read-only folder: features are computed again next time, no harm
        tmp.unlink(missing_ok=True)
