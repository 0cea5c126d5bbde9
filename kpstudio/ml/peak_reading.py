"""How a trained model reads its heatmaps: over the whole map, or around each map's peak —
chosen on the run's val images when training ends.

Reading around the peak (SoftArgmax's `peak`) helps where a map splits between look-alikes:
lp_mirror's side-view paws, 4.28 → 4.02 px mean on val for the same weights. It costs where
maps are wide rather than split, since the argmax cell is noisier than the mean: the flies' pose
model, 4.58 → 4.69 px mean (its median and AP improved). Neither reading suits every data set,
so each run measures both on its val images and keeps the lower mean px error (the whole map
on a tie: the reading every model had before). The weights are the same either way; only the
graph's last step differs, so nothing is retrained.

Each reading is also measured with the keypoint relations' prior (kpstudio.core.
keypoint_relations: the line from another coordinate that best predicts each keypoint's x and
y on the training labels; SoftArgmax reads each map a second time weighted towards where the
line puts it, as strongly as the source is sure of its own reading). lp_mirror, three models,
same weights each, val: 4.19 → 3.47, 4.34 → 3.75, 4.28 → 3.46 px (see PRIOR_FACTORS).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras

from kpstudio.core.keypoint_relations import describe as describe_relations
from kpstudio.core.keypoint_relations import fit_relations, scaled
from kpstudio.ml.evaluate import make_infer, mean_px_error, predict_letterboxed
from kpstudio.ml.models import PEAK_RADIUS, SoftArgmax

READINGS = (0, PEAK_RADIUS)  # cells around the peak; 0: the whole map
# The relations' prior, in multiples of the spread the training labels leave around each line:
# that spread is measured on the labels, where the source keypoint is exact; at inference the
# source is itself a prediction, and the line was picked as the best of 2K - 2. Measured on three
# 10-minute lp_mirror models (same weights each, val, the better reading of the two): no prior
# 4.19 / 4.34 / 4.28 px; unweighted at 2× / 3× / 4×: 3.82 / 3.59 / 3.54, 4.02 / 3.92 / 3.94,
# 3.96 / 3.68 / 3.51; weighted by the source's confidence (SoftArgmax), at 2× / 3× / 4×:
# 3.47 / 3.53 / 3.64, 3.80 / 3.75 / 3.75, 3.55 / 3.46 / 3.61.
PRIOR_FACTORS = (2.0, 3.0)


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


def set_reading(layers: list[SoftArgmax], peak: int, relations: list, factor: float) -> None:
    """Each layer reads around its peak (`peak` cells; 0: the whole map), guided by
    `relations` at `factor` times their spread (0: not guided)."""
    rows = scaled(relations, factor) if factor else []
    for layer in layers:
        layer.peak, layer.relations = peak, rows


def choose_reading(models: list[keras.Model], validate: Callable[[], float], peaks=READINGS,
                   relations: list | None = None, factors=(), plain: bool = True,
                   ) -> tuple[tuple, dict]:  # fmt: skip
    """Set on every SoftArgmax layer of `models` the reading with the lower val error: each of
    `peaks`, without the relations' prior (unless `plain` is false) and with it at each of
    `factors` times their spread. Returns ((peak, factor), {(peak, factor): val mean px});
    factor 0 is no prior. Ties go to no prior, then to the whole map. `validate()` must trace
    its graphs anew on each call: a traced graph keeps the reading it was traced with."""
    layers = soft_argmax_layers(*models)
    options = [(peak, 0.0) for peak in peaks] if plain or not relations else []
    if relations:
        options += [(peak, float(f)) for f in factors for peak in peaks]
    tried: dict[tuple, float] = {}
    for peak, factor in options:
        set_reading(layers, peak, relations, factor)
        tried[(peak, factor)] = float(validate())
    best = min(options, key=lambda o: (tried[o] if math.isfinite(tried[o]) else math.inf,
                                       o[1], o[0]))  # fmt: skip
    set_reading(layers, best[0], relations, best[1])
    return best, tried


def label(peak: int, factor: float) -> str:
    """The key of a reading in a run's metrics (`px_by_reading`): "0" the whole map, "3"
    around the peak, "3/prior4" with the relations' prior at 4× their spread."""
    return f"{peak}/prior{factor:g}" if factor else str(peak)


def describe(best: tuple, tried: dict, relations: list, keypoints: list[str]) -> str:
    """A sentence for the run's notes."""
    peak, factor = best
    where = (f"within {peak} cells of each heatmap's peak" if peak else "over each whole heatmap")
    px = tried[best]
    plain = [v for (p, f), v in tried.items() if not f]
    if factor:
        against = f", against {min(plain):.2f} px without them" if plain else ""
        return (f"keypoints are read {where}, guided by {len(relations)} relations between "
                f"keypoint coordinates learned from the training labels, at {factor:g}× their "
                f"spread ({describe_relations(relations, keypoints)}): {px:.2f} px on val"
                f"{against}")  # fmt: skip
    others = ", ".join(f"{v:.2f} px {_words(o)}" for o, v in tried.items() if o != best)
    return f"keypoints are read {where}: {px:.2f} px on val" + (f", against {others}"
                                                               if others else "")  # fmt: skip


def _words(option: tuple) -> str:
    peak, factor = option
    where = "around its peak" if peak else "over the whole map"
    return f"{where} with the relations at {factor:g}× their spread" if factor else where


def choose_for_run(cfg, model, top_down, cache, data, train_idx, val_idx, notes):
    """train()'s last step: keep the reading with the lower val error on the trained model
    (and a top-down run's pose model); it goes into `cfg.params`, so into the model file.
    The relations' prior is fitted on the training images' labels in the network's input
    pixels; a top-down model's pose model sees crops, so it gets none for now. `--set peak=N`
    and `--set prior=F` fix either choice. Returns (a fresh inference function for the final
    evaluation, or None for a top-down run; {label: val mean px}), or None when nothing is
    left to choose."""
    peaks = (cfg.params.get("peak", 0),) if "peak" in cfg.overrides else READINGS
    relations: list = []
    factors: tuple = ()
    if not top_down:
        fixed = cfg.overrides.get("prior")
        factors = PRIOR_FACTORS if fixed is None else ((fixed,) if fixed > 0 else ())
        if factors:
            stride = cfg.params.get("stride", 4)
            relations = fit_relations(cache.xy[train_idx], cache.weight[train_idx] > 0,
                                      min_sd=stride / 2)  # fmt: skip
    if len(peaks) == 1 and not relations:
        return None
    if top_down:
        def validate():
            top_down.forget_traces()
            return top_down.validate(val_idx)
    else:
        def validate():
            return mean_px_error(predict_letterboxed(make_infer(model), cache, val_idx), data,
                                 val_idx)  # fmt: skip
    models = [model, top_down.pose] if top_down else [model]
    best, tried = choose_reading(models, validate, peaks, relations, factors,
                                 plain="prior" not in cfg.overrides)  # fmt: skip
    # A copy: never the caller's.
    cfg.params = {k: v for k, v in cfg.params.items() if k not in ("peak", "relations")}
    if best[0] or "peak" in cfg.overrides:
        cfg.params["peak"] = best[0]
    if best[1]:
        cfg.params["relations"] = scaled(relations, best[1])
    notes.append(describe(best, tried, relations, list(data.skeleton.keypoints)))
    readings = {label(*o): v for o, v in tried.items()}
    if top_down:
        top_down.forget_traces()
        return None, readings
    return make_infer(model), readings
