"""How unsure the active model is about an image, for choosing what to label next.

Two signs, each in [0, 1], averaged:
- **low confidence**: 1 − the mean confidence of its keypoints (the heatmap peak);
- **flip disagreement**: the model's prediction on the mirrored image, mirrored back (x → W − x,
  left/right keypoints swapped by the skeleton's flip pairs), should land where the prediction
  on the image itself does. The mean distance d between the two, as d / (d + s) with s
  `FLIP_SCALE` of the image diagonal (0.5 at s, never quite 1: a poor early model that is far
  off everywhere still ranks its images rather than tying them all at a cap), says where the
  model is guessing: it is trained with flips, so on images like its training data the two
  agree.

The selection that uses these scores is kpstudio.core.suggest (plain arrays, no TensorFlow).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from kpstudio.core.image_reader import ImageReadError, read_image
from kpstudio.core.prediction_files import Prediction

FLIP_SCALE = 0.05  # a disagreement of 5 % of the image diagonal counts as half unsure
BATCH = 16


def mirrored_back(pred: Prediction, width: int, flip: Sequence[int]) -> np.ndarray:
    """(K, 2) positions of a prediction made on the mirrored image, in the image's own frame
    and keypoint order."""
    xy = np.asarray(pred.xy, dtype=np.float64).copy()
    xy[:, 0] = width - xy[:, 0]
    return xy[list(flip)]


def score(pred: Prediction, flipped: Prediction, width: int, height: int,
          flip: Sequence[int]) -> float:  # fmt: skip
    """The uncertainty in [0, 1] of one image from its two predictions (see the module doc)."""
    conf = np.asarray(pred.confidence, dtype=np.float64)
    low_confidence = 1.0 - float(np.clip(np.nanmean(conf), 0.0, 1.0)) if conf.size else 1.0
    back = mirrored_back(flipped, width, flip)
    dist = np.linalg.norm(np.asarray(pred.xy, dtype=np.float64) - back, axis=1)
    diagonal = float(np.hypot(width, height))
    if np.isfinite(dist).any():
        mean = float(np.nanmean(dist))
        disagreement = mean / (mean + FLIP_SCALE * diagonal)
    else:
        disagreement = 1.0
    return 0.5 * (low_confidence + disagreement)


def uncertainty_scores(
    predictor, paths: Sequence[Path], progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:  # fmt: skip
    """Uncertainty per image for a Predictor (anything with `predict_arrays` and a `skeleton`),
    NaN for an unreadable image. Images are read and predicted a batch at a time."""
    flip = predictor.skeleton.flip_permutation()
    out = np.full(len(paths), np.nan)
    for start in range(0, len(paths), BATCH):
        if should_stop is not None and should_stop():
            raise InterruptedError("stopped while scoring images")
        images, where = [], []
        for i in range(start, min(start + BATCH, len(paths))):
            try:
                images.append(read_image(paths[i]))
                where.append(i)
            except (ImageReadError, OSError):
                continue
        if images:
            mirrored = [np.ascontiguousarray(im[:, ::-1]) for im in images]
            preds = predictor.predict_arrays(images + mirrored)
            for j, (i, image) in enumerate(zip(where, images)):
                h, w = image.shape[:2]
                out[i] = score(preds[j], preds[len(images) + j], w, h, flip)
        if progress is not None:
            progress(min(start + BATCH, len(paths)), len(paths))
    return out


def model_scorer(
    model_path: Path, keypoints: Sequence[str], progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Callable[[list[Path]], np.ndarray]:  # fmt: skip
    """A scorer for kpstudio.core.suggest.choose from a .kpmodel file; ValueError when the
    model was trained on other keypoints than `keypoints` (its answers would be misread)."""
    from kpstudio.ml.predictor import Predictor  # TensorFlow: only when a model is used

    predictor = Predictor.from_file(model_path)
    if tuple(predictor.skeleton.keypoints) != tuple(keypoints):
        raise ValueError(f"{model_path} was trained on other keypoints than the project has now")

    def scorer(paths: list[Path]) -> np.ndarray:
        return uncertainty_scores(predictor, paths, progress, should_stop)

    return scorer
