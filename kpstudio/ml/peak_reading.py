"""How a trained model reads its heatmaps: over the whole map, or around each map's peak —
chosen on the run's val images when training ends.

Reading around the peak (SoftArgmax's `peak`) helps where a map splits between look-alikes:
lp_mirror's side-view paws, 4.28 → 4.02 px mean on val for the same weights. It costs where
maps are wide rather than split, since the argmax cell is noisier than the mean: the flies' pose
model, 4.58 → 4.69 px mean (its median and AP improved). Neither reading suits every data set,
so each run measures both on its val images and keeps the lower mean px error (the whole map
on a tie: the reading every model had before). The weights are the same either way; only the
graph's last step differs, so nothing is retrained.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras

from kpstudio.ml.evaluate import make_infer, mean_px_error, predict_letterboxed
from kpstudio.ml.models import PEAK_RADIUS, SoftArgmax

READINGS = (0, PEAK_RADIUS)  # cells around the peak; 0: the whole map


def soft_argmax_layers(*models: keras.Model) -> list[SoftArgmax]:
    """Every SoftArgmax layer of `models` (nested models included), each once."""
    found: list[SoftArgmax] = []
    stack = list(models)
    while stack:
        layer = stack.pop()
        if isinstance(layer, SoftArgmax):
            if not any(layer is f for f in found):
                found.append(layer)
        elif isinstance(layer, keras.Model):
            stack.extend(layer.layers)
    return found


def choose_peak(models: list[keras.Model], validate: Callable[[], float]) -> tuple[int, dict]:
    """Set on every SoftArgmax layer of `models` the reading with the lower val error and
    return (that reading, {reading: val mean px}). `validate()` must trace its graphs anew on
    each call: a traced graph keeps the reading it was traced with."""
    layers = soft_argmax_layers(*models)
    tried: dict[int, float] = {}
    for peak in READINGS:
        for layer in layers:
            layer.peak = peak
        tried[peak] = float(validate())
    best = min(READINGS, key=lambda p: (tried[p] if math.isfinite(tried[p]) else math.inf, p))
    for layer in layers:
        layer.peak = best
    return best, tried


def describe(peak: int, tried: dict) -> str:
    """A sentence for the run's notes."""
    whole, around = tried.get(0, math.nan), tried.get(PEAK_RADIUS, math.nan)
    if peak:
        return (f"keypoints are read within {peak} cells of each heatmap's peak: {around:.2f} px "
                f"on val, against {whole:.2f} px over the whole map")  # fmt: skip
    return (f"keypoints are read over each whole heatmap: {whole:.2f} px on val, against "
            f"{around:.2f} px around its peak")  # fmt: skip


def choose_for_run(cfg, model, top_down, cache, data, val_idx, notes):
    """train()'s last step: keep the reading with the lower val error on the trained model
    (and a top-down run's pose model); it goes into `cfg.params`, so into the model file.
    Returns (a fresh inference function for the final evaluation, {reading: val mean px})."""
    if top_down:
        def validate():
            top_down.forget_traces()
            return top_down.validate(val_idx)
    else:
        def validate():
            return mean_px_error(predict_letterboxed(make_infer(model), cache, val_idx), data,
                                 val_idx)  # fmt: skip
    models = [model, top_down.pose] if top_down else [model]
    peak, tried = choose_peak(models, validate)
    cfg.params = {k: v for k, v in cfg.params.items() if k != "peak"}  # a copy: never the caller's
    if peak:
        cfg.params["peak"] = peak
    notes.append(describe(peak, tried))
    if top_down:
        top_down.forget_traces()
        return None, tried
    return make_infer(model), tried
