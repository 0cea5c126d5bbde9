"""The training plan: settings derived from the labels' fingerprint, deterministically.

nnU-Net's self-configuration is the precedent: a fingerprint of the data set (kpstudio.core.
fingerprint) goes through fixed rules to the settings, so a new data set needs no tuning and
the same labels always give the same plan. The rules:

- Working scale (network pixels per frame pixel) is the largest of: the whole frame in a
  BASE_SIDE input (what the default model's compute is budgeted for, never enlarging the
  frame), the typical object spanning MIN_OBJECT_SPAN pixels (1.5 cells of the encoder's
  coarsest, stride-32 level), and the closest usually-labeled keypoints landing MIN_CELLS
  heatmap cells apart. It is capped by the compute budget (MAX_SIDE, MAX_SCALE, the image
  cache's memory, the heatmap values per training input).
- Heatmap stride 4 or 2, whichever meets the cell rule at the lower cost: stride 2 needs half
  the scale for the same cells but costs STRIDE_COST[2] times as much per input pixel, so a
  frame that stride 4 would have to enlarge by more than √1.6 gets stride 2 at the smaller
  scale. The cost counted is that of the input the model sees when it predicts (the whole
  frame, or a top-down crop): prediction cost is what a user pays on every frame of a video.
- Training on crops around each object when a crop holding 95 % of the objects with a margin
  is smaller than the whole frame; on whole frames otherwise.
- Batch size keeps the pixels per step near the measured 16 crops of 160 px.
- Context blocks (dilated convolutions at the encoder's stride 32) until the model's
  receptive field spans the typical object at the planned scale (SLEAP's rule for its max
  stride): a keypoint that looks like another (a side view's near and far paw) is told apart
  by what lies across the whole object. Objects the plain encoder already covers get none.
  Measured on lp_mirror_mouse (one mouse ~290 px across in a 320 input, 5 minutes on the 2-core
  CPU): no blocks 5.91 px mean, 2 blocks 4.14, 4 blocks 4.61 (19 val images: ±0.5 px).
- Several objects per image, or small objects the budget could not enlarge enough, call for a
  top-down model: a light finder sees the whole frame at a low resolution (objects
  FINDER_OBJECT_SPAN pixels across) and proposes each object's centre; the pose model sees a
  crop around each centre at the planned scale. Since only crops are seen at that scale, the
  whole-frame input cap (MAX_SIDE) does not bind it, only the image cache's memory does.

Every figure of the plan comes with a sentence that explains it (`Plan.sentences`).
No Qt, no TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from kpstudio.core.fingerprint import Fingerprint, from_project

MIN_CELLS = 2.0  # the closest keypoints land at least this many heatmap cells apart
STRIDES = (4, 2)  # heatmap strides the default model has, in order of preference (cost)
# Inference time per input pixel relative to stride 4, measured on the 2-core CPU at a 320-px
# input and batch 8 (benchmarks/bench_train.py): 11.7 ms at stride 4, 18.6 ms at stride 2.
STRIDE_COST = {4: 1.0, 2: 1.6}
BASE_SIDE = 320  # whole-frame input side the default model's compute is budgeted for
MAX_SIDE = 640  # largest whole-frame input: prediction and validation cost grow with its area
MAX_SCALE = 2.0  # enlarging frames further shows no more detail
# px in the network: 1.5 cells at the encoder's stride 32. Measured on openfield, 10 minutes on
# the 2-core CPU: enlarged to 79 px by a 64-px rule (stride 4, 448 input) the mouse reached
# 2.6 px where the 320 input (55 px) reached 2.25 px the same day; at 55 px with stride 2 it
# reaches ~1.9 px (benchmarks/bench_quality.py).
MIN_OBJECT_SPAN = 48
MAX_CACHE_BYTES = 2 * 1024**3  # the letterboxed images kept in memory while training
# Heatmap values (keypoints × cells) per training input. The head and its loss work per
# keypoint per cell: 68 keypoints × 40² cells took ~50 ms of a ~250 ms step of 16 crops on two
# CPU cores; at 2^19 they would cost about what the backbone does.
MAX_HEATMAP_VALUES = 2**19
CROP_GROWTH, CROP_MARGIN, MIN_CROP = 1.3, 32, 128  # crop side ≥ 1.3 × object + 32 px, ≥ 128
BASE_BATCH, BASE_TRAIN_SIDE = 16, 160  # measured: 16 crops of 160 px per step
MIN_BATCH, MAX_BATCH = 8, 32
BASE_ZOOM, MAX_ZOOM = 0.2, 0.35  # zoom augmentation range, ± fraction
SMALL_OBJECT = 0.25  # objects under this fraction of the frame side are "small in the frame"
MULTIPLE = 32  # the default model's input sides are multiples of its coarsest stride
# The finder (top-down) sees the typical object this many pixels across: enough to tell one
# animal from two touching ones at its stride-4 centre map, at a small share of the pose cost.
FINDER_OBJECT_SPAN = 48
MIN_FINDER_SIDE = 96
MAX_CACHED_SIDE = 1024  # the largest letterboxed frame a top-down run keeps in memory
# The default model's theoretical receptive field, input px: 87 at its stride-32 level (3×3
# convolutions at strides 2, 2, 1, 2, 1, 2, 2), plus its 3×3 smoothing at strides 16 and 8.
BASE_FIELD = 87 + 32 + 16
CONTEXT_FIELD = 128  # each context block (3×3, dilation 2 at stride 32) widens it by 4 cells
MAX_CONTEXT = 4  # kpstudio.ml.models.MAX_CONTEXT


@dataclass
class Plan:
    fingerprint: Fingerprint
    scale: float  # network pixels per pixel of a median frame
    input_size: int  # whole-frame (letterbox) input side
    crop_size: int  # training crop side; 0: whole frames
    stride: int  # heatmap stride
    batch_size: int
    augmentation: dict  # Augmentation fields the plan sets
    epochs: int | None  # None: as many as the time budget allows (300 without one)
    cells: float | None  # closest pair's typical distance in heatmap cells at this scale
    path: str  # what trains: "crops" | "whole-image" | "top-down"
    preferred: str  # what the data calls for (equal to path unless the user chose otherwise)
    sentences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the user should know
    # Top-down only: the finder's whole-frame input side (0: no finder, one object per image).
    finder_size: int = 0
    context: int = 0  # context blocks at the encoder's stride 32 (an architecture parameter)

    def settings(self) -> dict:
        """The training settings, by TrainConfig name (stride and context are architecture
        parameters)."""
        return {"input_size": self.input_size, "crop_size": self.crop_size,
                "stride": self.stride, "context": self.context, "batch_size": self.batch_size,
                "augmentation": dict(self.augmentation), "epochs": self.epochs}  # fmt: skip

    @property
    def top_down(self) -> bool:
        return self.path == "top-down"

    def to_dict(self) -> dict:
        out = asdict(self)
        out["fingerprint"] = self.fingerprint.to_dict()
        return out


def make_plan(fp: Fingerprint, minutes: float | None = None, input_size: int | None = None,
              top_down: bool | None = None) -> Plan:  # fmt: skip
    """The plan for a fingerprint (and a time budget in minutes, if there is one).

    `input_size`: the whole-frame input side the user chose; the crop, stride and batch are
    then planned for the scale it gives. `top_down`: the user's choice of path (None: the
    data's)."""
    side = fp.frame_side
    span = fp.object_span.get("median")
    span95 = fp.object_span.get("p95")
    cache_side = math.sqrt(MAX_CACHE_BYTES / (3.0 * fp.images))
    cap = min(MAX_SCALE, MAX_SIDE / side, cache_side / side)
    wants = {"fit": min(1.0, BASE_SIDE / side)}
    if span:
        wants["object"] = MIN_OBJECT_SPAN / span
    chosen, options = _choose(fp, wants, cap, input_size, top_down=False)
    multi = fp.objects_per_image.get("max", 1) > 1
    small = bool(span95) and span95 <= SMALL_OBJECT * side and chosen["capped"]
    preferred = "top-down" if (multi or small) else ("crops" if chosen["crop"] else "whole-image")
    if top_down is None:
        top_down = preferred == "top-down"
    if top_down:  # crops at the planned scale only: the whole-frame cap does not bind
        cap = min(MAX_SCALE, MAX_CACHED_SIDE / side, cache_side / side)
        chosen, options = _choose(fp, wants, cap, input_size, top_down=True)
    scale, size, stride, crop = chosen["scale"], chosen["size"], chosen["stride"], chosen["crop"]
    train_side = crop or size
    batch = BASE_BATCH * (BASE_TRAIN_SIDE / train_side) ** 2
    batch = min(MAX_BATCH, max(MIN_BATCH, 2 ** round(math.log2(batch))))
    batch = min(batch, max(2, 2 ** int(math.log2(fp.images))))
    zoom = BASE_ZOOM
    if fp.object_span.get("p5"):
        spread = math.log(span95 / fp.object_span["p5"]) / 2
        zoom = min(MAX_ZOOM, max(BASE_ZOOM, round(spread * 20) / 20))

    path = "top-down" if top_down else ("crops" if crop else "whole-image")
    plan = Plan(fp, scale, size, crop, stride, batch, {"scale": zoom}, None, chosen["cells"],
                path, preferred)  # fmt: skip
    if top_down:
        plan.finder_size = _finder_side(fp, size)
    if span:
        plan.context = _context(span * scale)
    plan.sentences, plan.notes = _explain(plan, wants, chosen, options, minutes, multi, small)
    return plan


def _choose(fp: Fingerprint, wants: dict, cap: float, fixed: int | None, top_down: bool):
    """(the chosen option, every option): of the strides that meet the cell rule, the cheapest
    to predict with (the first of equals); when none does, the one with the most cells."""
    options = [_at_stride(stride, fp, wants, cap, fixed, top_down) for stride in STRIDES]
    met = [o for o in options if o["cells"] is None or o["cells"] >= MIN_CELLS - 1e-6]
    if met:
        return min(met, key=lambda o: _cost(o, top_down)), options
    # Most cells when none meets the rule; of equals, the smaller input (less compute).
    return max(options, key=lambda o: (round(o["cells"], 3), -o["size"])), options


def _cost(option: dict, top_down: bool) -> float:
    """Relative prediction cost: the predicted input's pixels × the stride's cost per pixel."""
    side = option["crop"] if top_down and option["crop"] else option["size"]
    return side * side * STRIDE_COST[option["stride"]]


def _finder_side(fp: Fingerprint, size: int) -> int:
    """The finder's whole-frame input side: the typical object FINDER_OBJECT_SPAN px across,
    never more than the pose scale's frame."""
    span = fp.object_span.get("median") or fp.frame_side
    want = _ceil(FINDER_OBJECT_SPAN / span * fp.frame_side)
    return max(MIN_FINDER_SIDE, min(size, want))


def _context(span: float) -> int:
    """Context blocks for objects `span` network px across (see the module doc)."""
    blocks = math.ceil((span - BASE_FIELD) / CONTEXT_FIELD - 1e-9)
    return min(MAX_CONTEXT, max(0, blocks))


def plan_for_project(project, minutes: float | None = None) -> Plan:
    return make_plan(from_project(project), minutes)


def plan_sentences(project, minutes: float | None = None) -> list[str]:
    """The plan's explanation for a project, a sentence per choice (the Training dock's text)."""
    return plan_for_project(project, minutes).sentences


def _at_stride(stride: int, fp: Fingerprint, wants: dict, cap: float, fixed: int | None,
               top_down: bool = False) -> dict:  # fmt: skip
    side, pair = fp.frame_side, fp.closest_pair
    wants = dict(wants)
    if pair and pair["distance"] > 0:
        wants["detail"] = MIN_CELLS * stride / pair["distance"]
    want = max(wants.values())
    top = max(MULTIPLE, _floor(cap * side))
    size = min(top, max(MULTIPLE, _ceil(min(want, cap) * side)))
    capped = want > cap + 1e-9
    if fixed:
        size, capped = fixed, False
    crop = _crop(fp, size, top_down)
    while (
        not fixed
        and size > MULTIPLE
        and len(fp.keypoints) * ((crop or size) / stride) ** 2 > MAX_HEATMAP_VALUES
    ):
        size, capped = size - MULTIPLE, True
        crop = _crop(fp, size, top_down)
    scale = size / side
    cells = pair["distance"] * scale / stride if pair else None
    return {"stride": stride, "wants": wants, "want": want, "size": size, "scale": scale,
            "crop": crop, "cells": cells, "capped": capped, "fixed": bool(fixed)}  # fmt: skip


def _crop(fp: Fingerprint, size: int, top_down: bool = False) -> int:
    """Training crop side at whole-frame input `size`: holds 95 % of the objects with a margin;
    0 (whole frames) when that is no smaller than the frame, unless top-down (whose pose
    model only ever sees crops)."""
    span95, scale = fp.object_span.get("p95"), size / fp.frame_side
    if span95:
        need = max(MIN_CROP, _ceil(CROP_GROWTH * span95 * scale + CROP_MARGIN))
    elif fp.keypoints_per_object <= 1:  # single points: a fixed window around each
        need = MIN_CROP
    else:
        return size if top_down else 0
    return need if (need < size or top_down) else 0


def _explain(plan: Plan, wants, chosen, options, minutes, multi, small):
    fp, s = plan.fingerprint, plan.scale
    frame = f"{fp.frame_width:.0f}×{fp.frame_height:.0f}"
    if fp.frame_side_range[0] != fp.frame_side_range[1]:
        frame += (
            f" (median; longer sides {fp.frame_side_range[0]:.0f}–{fp.frame_side_range[1]:.0f})"
        )
    per_image = fp.objects_per_image
    out = [
        f"{fp.images} labeled images, {fp.objects} objects ({per_image['mean']:.3g} per image), "
        f"{len(fp.keypoints)} keypoints ({fp.keypoints_per_object:.0f} labeled per object); "
        f"{100 * fp.labeled_share:.0f} % of the keypoints labeled, "
        f"{100 * fp.occluded_share:.0f} % of those occluded."
    ]
    reasons = {"fit": f"the whole frame in a {BASE_SIDE}-px input",
               "object": f"objects ≥ {MIN_OBJECT_SPAN} px across",
               "detail": f"the closest keypoints {MIN_CELLS:g} cells apart at stride "
                         f"{plan.stride}"}  # fmt: skip
    parts = [f"{reasons[k]} ({v:.2f})" for k, v in chosen["wants"].items()]
    rule = f"the largest of {', '.join(parts)}, in whole multiples of {MULTIPLE} px"
    if chosen["fixed"]:
        rule = f"the input size set by the user (the data alone asks for {rule})"
    if chosen["capped"]:
        rule += f", capped at {chosen['size']} px by the compute budget"
    span = fp.object_span
    objects = (f"objects ~{span['median']:.0f} px across (95 % under {span['p95']:.0f} px) in "
               if span else "")  # fmt: skip
    out.append(f"{objects}{frame} frames → scale {s:.2f}, frames letterboxed to "
               f"{plan.input_size}×{plan.input_size}: {rule}.")  # fmt: skip
    if plan.top_down:
        out.append(
            f"top-down: a finder sees the whole frame at {plan.finder_size}×{plan.finder_size} "
            f"(objects ~{FINDER_OBJECT_SPAN} px across) and proposes each object's centre; the "
            f"pose model sees a {plan.crop_size}×{plan.crop_size} crop around each centre at "
            f"scale {s:.2f} (95 % of the objects, {span.get('p95', 0) * s:.0f} px at this scale, "
            "with a margin)."
        )
    elif plan.crop_size:
        out.append(
            f"training on {plan.crop_size}×{plan.crop_size} crops around each object (95 % of "
            f"the objects, {span.get('p95', 0) * s:.0f} px at this scale, with a margin); "
            f"prediction sees the whole {plan.input_size}-px frame."
        )
    else:
        out.append(
            f"training on whole frames: a crop holding the objects with a margin would be no "
            f"smaller than the {plan.input_size}-px frame."
        )
    pair = fp.closest_pair
    if pair:
        line = (
            f"the {pair['a']}–{pair['b']} distance of ~{pair['distance']:.1f} px gives "
            f"{plan.cells:.1f} cells at stride {plan.stride}"
        )
        if plan.stride != STRIDES[0]:
            first = options[0]
            if first["cells"] is not None and first["cells"] >= MIN_CELLS - 1e-6:
                limit = (f"a {first['size']}-px input, costing "
                         f"{_cost(first, plan.top_down) / _cost(chosen, plan.top_down):.2f}× "
                         "as much to predict")  # fmt: skip
            elif chosen["fixed"]:
                limit = "the input size set"
            else:
                limit = "the most the budget allows"
            line += (f" (stride {first['stride']} would give {first['cells']:.1f} at scale "
                     f"{first['scale']:.2f}, {limit})")  # fmt: skip
        if plan.cells < MIN_CELLS - 1e-6:
            limit = "the input size set by the user" if chosen["fixed"] else "the compute budget"
            line += f": below {MIN_CELLS:g}, the most {limit} allows"
        out.append(line + ".")
    else:
        out.append(f"heatmap stride {plan.stride} (no pair of keypoints is usually labeled "
                   "together).")  # fmt: skip
    if span:
        field = BASE_FIELD + CONTEXT_FIELD * plan.context
        out.append(
            f"{plan.context} context block(s) at stride 32: a receptive field of {field} px "
            f"for objects ~{span['median'] * s:.0f} px across at this scale (the fewest blocks "
            f"whose field spans the object, at most {MAX_CONTEXT})."
        )
    out.append(
        f"batches of {plan.batch_size} ({plan.crop_size or plan.input_size}-px inputs; "
        f"{BASE_BATCH} per step at {BASE_TRAIN_SIDE} px, scaled by area, {MIN_BATCH}–{MAX_BATCH})."
    )
    zoom = plan.augmentation["scale"]
    flip = (f"mirroring with {fp.flip_pairs} left/right pair(s) swapped" if fp.flip_pairs
            else "no mirroring (the skeleton has no left/right pairs)")  # fmt: skip
    spread = ""
    if span.get("p5"):
        spread = f" (object sizes span {span['p5']:.0f}–{span['p95']:.0f} px)"
    out.append(f"augmentation: zoom ±{100 * zoom:.0f} %{spread}, rotation, shift, "
               f"brightness, contrast and noise at their defaults, {flip}.")  # fmt: skip
    out.append(
        f"epochs: as many as fit in {minutes:g} minutes." if minutes
        else "epochs: 300 at most, or as many as fit in the time budget when there is one."
    )  # fmt: skip
    notes = []
    if plan.preferred == "top-down":
        reason = (f"up to {per_image['max']} objects per image" if multi else
                  f"objects ~{span['p95']:.0f} px in {fp.frame_side:.0f}-px frames, too small "
                  "for a whole-frame input to show their detail")  # fmt: skip
        if plan.top_down:
            out.append(f"why top-down: {reason}; every labeled object trains, and prediction "
                       "returns each object found with a score.")  # fmt: skip
        else:
            fallback = ("a single-instance model, trained on the first object of each image"
                        if multi else f"whole frames at scale {s:.2f}")  # fmt: skip
            notes.append(f"the data calls for a top-down model ({reason}); this run uses "
                         f"{fallback}")  # fmt: skip
            out.append(notes[-1] + ".")
    return out, notes


def _ceil(x: float) -> int:
    return int(math.ceil(x / MULTIPLE - 1e-9)) * MULTIPLE


def _floor(x: float) -> int:
    return int(math.floor(x / MULTIPLE + 1e-9)) * MULTIPLE
