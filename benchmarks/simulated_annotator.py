"""The simulated annotator of bench_assist.py and bench_hints.py: how many clicks bring every
labeled keypoint of an image within a tolerance, starting from the model's suggestions.

Without re-inference, each suggestion farther than the tolerance costs a click (the user drags
it to the truth). With re-inference, the annotator drags the worst one to the truth, the model
answers again with every corrected point as a hint, and so on until all are within it.
"""

from __future__ import annotations

import time

import numpy as np


def correct_image(predictor, image, truth: np.ndarray, labeled: np.ndarray, tolerance: float,
                  seconds: list | None = None) -> tuple[int, int]:  # fmt: skip
    """(clicks without re-inference, clicks with re-inference from hints) for one image;
    `seconds` (a list) collects the time of each re-inference."""
    names = predictor.skeleton.keypoints
    given: dict = {}
    pred = predictor.predict_with_hints(image, given)
    first = np.linalg.norm(pred.xy - truth, axis=1)
    without = int((labeled & ~(first <= tolerance)).sum())
    while True:
        err = np.linalg.norm(pred.xy - truth, axis=1)
        bad = [k for k in range(len(names)) if labeled[k] and names[k] not in given
               and not err[k] <= tolerance]  # fmt: skip
        if not bad:
            return without, len(given)
        worst = max(bad, key=lambda k: err[k] if np.isfinite(err[k]) else np.inf)
        given[names[worst]] = tuple(truth[worst])
        started = time.perf_counter()
        pred = predictor.predict_with_hints(image, given)
        if seconds is not None:
            seconds.append(time.perf_counter() - started)
