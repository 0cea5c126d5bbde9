"""Assisted labeling benchmark: a simulated annotator on a COCO keypoints file (its labels are
the truth), labeling in rounds in three orders, from no labels.

The project's val split is held fixed, labeled from the start, and is where every round is
measured; the train split is the pool the annotator labels from. "labels" below count the
train images labeled (the val images cost the same in every order). Each round labels the
next images of its order up to the next step of `--schedule`, trains a fresh model (cold
start) on them for `--minutes`, and measures the val mean px error. The diversity order
stops once it reaches `--target` px (with 25 labels or more); the random order runs through
the whole schedule (the reference learning curve the forecast is checked on), and so does the
suggested order, as Assist keeps training while the person labels the whole pool.

Orders:
- suggested: the studio's `kpstudio suggest` rule (kpstudio.core.suggest): diversity alone
  for the first round, then the previous round's model's uncertainty × diversity;
- random: a seeded shuffle;
- diversity: k-center over the image features alone, never a model.

Keys (`--json`: one JSON object): labels_to_target {suggested, random, diversity} (null: never
reached), mean_px_at_25_labels (suggested order; the round with 25 labels) and
cpu_minutes_at_25_labels (the CPU time that order had used by then, this process's: both
cores count) and training_minutes_at_25_labels (the wall-clock minutes its rounds trained),
forecast_error
(relative: the power law fitted to the random curve's points up to half its labels, against
the error measured at all of them), cpu_minutes (this process, all orders), manual_clicks (every labeled
keypoint of the pool: a click each by hand), assisted_clicks_without_reinference (suggested
order: the clicks left when each image starts from the previous round's prediction, one per
keypoint farther than `--tolerance` from the truth, every keypoint in the first round),
assisted_clicks (the same, but as the studio does it: the annotator drags the worst suggestion
to the truth, the model re-infers the rest with every corrected point as a hint, until all are
within the tolerance), click_ratio (assisted_clicks / manual_clicks, over the whole pool) and
refresh_seconds_p50 / p95 (from an accepted correction to fresh suggestions on every unlabeled
image, as Assist does it: the correction joins the next epoch (the run's median epoch time),
the better model is published (on average half of PUBLISH_INTERVAL_S later) and predicts every
unlabeled image of the pool (timed)).

Training is as Assist trains: a hint-conditioned default model (hints=1), each round started
from the previous round's model (`--cold`: every round from scratch).

    python benchmarks/bench_assist.py --dataset ../shared/datasets/dlc_openfield_mouse/annotations.json
        [--minutes 1] [--tolerance 3] [--target 3] [--schedule 4,8,12,...,all] [--json]
"""  # noqa: E501

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from simulated_annotator import correct_image  # noqa: E402

from kpstudio.core.formats import read_labels  # noqa: E402
from kpstudio.core.image_features import image_features  # noqa: E402
from kpstudio.core.learning_curve import fit_learning_curve  # noqa: E402
from kpstudio.core.project import Project  # noqa: E402
from kpstudio.core.project_transfer import import_labelset  # noqa: E402
from kpstudio.core.suggest import Inputs, choose, k_center  # noqa: E402
from kpstudio.core.training_set import TrainingSet, snapshot  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO.parent / "shared" / "datasets" / "dlc_openfield_mouse" / "annotations.json"
ORDERS = ("suggested", "random", "diversity")
# Rounds of 4 images at first, as Assist retrains while a person labels: at ~15 s an image, a
# round of 4 takes a person about the minute of training each round gets; later rounds get
# the same minute for more images, so the budget never exceeds the person's time.
DEFAULT_SCHEDULE = "4,8,12,16,20,25,32,40,50,64,80,all"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET,
                        help="a COCO keypoints file; its images beside it")  # fmt: skip
    parser.add_argument("--minutes", type=float, default=1.0, help="training budget per round "
                        "(wall-clock minutes on this machine)")  # fmt: skip
    parser.add_argument("--tolerance", type=float, default=3.0, help="px: a suggestion this "
                        "close to the truth needs no click")  # fmt: skip
    parser.add_argument("--target", type=float, default=3.0, help="val mean px to reach")
    parser.add_argument(
        "--schedule",
        default=DEFAULT_SCHEDULE,
        help="labels after each round (train images; 'all': the whole pool)",
    )
    parser.add_argument("--orders", default=",".join(ORDERS), help="which orders to run")
    parser.add_argument("--cold", action="store_true", help="every round from scratch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    cpu0 = time.process_time()
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else print

    with tempfile.TemporaryDirectory(prefix="kpstudio-bench-assist-") as tmp:
        tmp = Path(tmp)
        with Project.create(tmp / "project") as project:
            import_labelset(project, read_labels("coco", args.dataset))
            data = snapshot(project)
        pool, val = data.indices("train"), data.indices("val")
        schedule = _schedule(args.schedule, len(pool))
        log(f"assist benchmark: {args.dataset}, {len(pool)} pool / {len(val)} val images, "
            f"{len(data.skeleton)} keypoints, rounds at {schedule} labels, {args.minutes:g} "
            "min per round")  # fmt: skip
        features = image_features(list(range(len(data))), data.paths)
        curves, clicks, refresh = {}, None, []
        for order in [o.strip() for o in args.orders.split(",") if o.strip()]:
            if order not in ORDERS:
                parser.error(f"--orders takes {', '.join(ORDERS)}, not {order!r}")
            curve, assisted, times = run_order(order, data, features, schedule, args,
                                               tmp / order, log)  # fmt: skip
            curves[order] = curve
            if order == "suggested":
                clicks, refresh = assisted, times

    result = {
        "labels_to_target": {o: _first_reaching(curves.get(o), args.target) for o in ORDERS},
        "mean_px_at_25_labels": _at(curves.get("suggested"), 25, 1),
        "cpu_minutes_at_25_labels": _at(curves.get("suggested"), 25, 2),
        "training_minutes_at_25_labels": _at(curves.get("suggested"), 25, 3),
        "forecast_error": _forecast_error(curves.get("random")),
        "cpu_minutes": (time.process_time() - cpu0) / 60.0,
        "manual_clicks": int((data.visibility[pool] > 0).sum()),
        "assisted_clicks_without_reinference": None if clicks is None else clicks[0],
        "assisted_clicks": None if clicks is None else clicks[1],
        "click_ratio": None if clicks is None else clicks[1] / max(1, int(
            (data.visibility[pool] > 0).sum())),  # fmt: skip
        "refresh_seconds_p50": float(np.percentile(refresh, 50)) if refresh else None,
        "refresh_seconds_p95": float(np.percentile(refresh, 95)) if refresh else None,
        "curves": {
            o: [{"labels": n, "mean_px": e, "cpu_minutes": m, "training_minutes": t,
                 "kept_previous_model": k} for n, e, m, t, k in c]
            for o, c in curves.items()
        },
        "notes": {
            "labels": "train images labeled; the val split is fixed and labeled from the start",
            "training": (f"{'cold' if args.cold else 'warm'} start, hint-conditioned, "
                         f"{args.minutes:g} min per round"),
        },  # fmt: skip
    }
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        _print_summary(result, args)
    return 0


def run_order(order, data: TrainingSet, features, schedule, args, folder: Path, log):
    """Label in `order` round by round; returns the curve [(labels, val mean px, cpu min)]
    and, for the suggested order, the clicks ((without re-inference, with hints)) and the
    refresh times of its rounds."""
    pool, val = data.indices("train"), data.indices("val")
    rng = np.random.default_rng(args.seed)
    if order == "random":
        fixed = list(rng.permutation(pool))
    elif order == "diversity":
        fixed = [int(pool[i]) for i in k_center(features[pool], np.zeros(len(pool), bool),
                                                len(pool))]  # fmt: skip
    labeled: list[int] = []
    curve, model, cpu0, trained = [], None, time.process_time(), 0.0
    clicks, refresh = np.zeros(2, int), []
    suggested = order == "suggested"
    for step, n in enumerate(schedule):
        new = (fixed[len(labeled):n] if not suggested
               else _suggest(data, features, labeled, n - len(labeled), model))  # fmt: skip
        if suggested:
            clicks += _clicks(data, new, model, args.tolerance)
        labeled += [int(i) for i in new]
        started = time.perf_counter()
        result = _train(data, labeled, val, args, folder / f"round-{step}",
                        None if args.cold else model)  # fmt: skip
        trained += (time.perf_counter() - started) / 60.0
        err = float(result.metrics.get("mean_px", float("nan")))
        kept = result.best_epoch == 0  # the round kept the model it started from
        curve.append((len(labeled), err, (time.process_time() - cpu0) / 60.0, trained, kept))
        log(f"  {order:9s} round {step + 1}: {len(labeled):3d} labels → val mean {err:.2f} px")
        model = result.model_path
        done = set(labeled)
        unlabeled = [int(i) for i in pool if int(i) not in done]
        if suggested and unlabeled:  # fresh suggestions for the images still to label
            refresh.append(_refresh_seconds(result, data, unlabeled))
        # Past 25 labels too: mean_px_at_25_labels is measured, not extrapolated.
        if err <= args.target and len(labeled) >= 25 and order == "diversity":
            break
    if suggested:  # the rest of the pool (if any), labeled from the last model's suggestions
        clicks += _clicks(data, unlabeled, model, args.tolerance)
        log(f"  clicks (suggested order, whole pool): {clicks[0]} without re-inference, "
            f"{clicks[1]} with hints")  # fmt: skip
    return curve, (tuple(int(c) for c in clicks) if suggested else None), refresh


def _refresh_seconds(result, data, unlabeled) -> float:
    """A correction's way to fresh suggestions under Assist: the next epoch, half a publish
    interval, then the new model on every unlabeled image."""
    from kpstudio.core.image_reader import read_image
    from kpstudio.ml.predictor import Predictor
    from kpstudio.ml.train import PUBLISH_INTERVAL_S

    times = [h.get("seconds") for h in result.history]
    epochs = np.diff([0.0, *[t for t in times if t is not None]])
    epoch = float(np.median(epochs[1:] if len(epochs) > 1 else epochs)) if len(epochs) else 0.0
    predictor = Predictor.from_file(result.model_path)
    started = time.perf_counter()
    for start in range(0, len(unlabeled), 32):
        predictor.predict_arrays([read_image(data.paths[i])
                                  for i in unlabeled[start : start + 32]])  # fmt: skip
    return epoch + PUBLISH_INTERVAL_S / 2 + (time.perf_counter() - started)


def _suggest(data, features, labeled, count, model_path):
    pool, done = {int(i) for i in data.indices("train")}, set(labeled)
    labeled_mask = np.array([i in done for i in range(len(data))])
    candidates = np.array([i in pool and i not in done for i in range(len(data))])
    inputs = Inputs(data.project_folder, list(range(len(data))), [str(p) for p in data.paths],
                    list(data.paths), labeled_mask, candidates)  # fmt: skip
    scorer = None
    if model_path is not None:
        from kpstudio.ml.uncertainty import model_scorer

        scorer = model_scorer(model_path, data.skeleton.keypoints)
    return [s.image_id for s in choose(inputs, count, features, scorer)]


def _clicks(data, images, model_path, tolerance) -> np.ndarray:
    """Clicks to label `images` starting from the model's suggestions (no model: all by hand):
    (without re-inference, with re-inference from hints after each correction)."""
    visible = data.visibility[images] > 0
    if model_path is None or not len(images):
        return np.array([int(visible.sum())] * 2)
    from kpstudio.core.image_reader import read_image
    from kpstudio.ml.predictor import Predictor

    predictor = Predictor.from_file(model_path)
    out = np.zeros(2, int)
    for i in images:
        out += correct_image(predictor, read_image(data.paths[i]), data.xy[i].astype(np.float64),
                             data.visibility[i] > 0, tolerance)  # fmt: skip
    return out


def _train(data, labeled, val, args, run_dir, warm):
    """A round's training as Assist does it: hint-conditioned, from the last model."""
    from kpstudio.ml.config import TrainConfig
    from kpstudio.ml.train import train

    sub = data.subset(sorted([*labeled, *(int(i) for i in val)]))
    config = TrainConfig(max_minutes=args.minutes, seed=args.seed, params={"hints": True},
                         warm_start=str(warm) if warm else None)  # fmt: skip
    return train(sub, config, run_dir=run_dir)


def _schedule(text: str, pool: int) -> list[int]:
    steps = sorted({pool if s.strip() == "all" else min(int(s), pool)
                    for s in text.split(",") if s.strip()})  # fmt: skip
    if not steps or steps[0] < 1:
        raise SystemExit(f"--schedule takes label counts like 8,16,25,all, not {text!r}")
    return steps


def _first_reaching(curve, target):
    if curve is None:
        return None
    return next((row[0] for row in curve if row[1] <= target), None)


def _at(curve, labels: int, column: int):
    """A column of the round with exactly `labels` labels (None: no such round)."""
    return next((row[column] for row in curve or [] if row[0] == labels), None)


def _forecast_error(curve):
    """Relative error of the power law fitted up to half the labels, at all of them. A round
    that kept the model it started from measured no model of its labels: it is left out, as
    `kpstudio learning-curve` leaves out such runs (core/learning_curve.run_points)."""
    if not curve:
        return None
    top, measured = curve[-1][:2]
    half = [row[:2] for row in curve if row[0] <= top / 2 and not row[4]]
    if len(half) < 2:
        return None
    law = fit_learning_curve([n for n, _ in half], [e for _, e in half])
    return float(abs(law(top) - measured) / measured)


def _print_summary(result, args) -> None:
    print()
    for order, curve in result["curves"].items():
        print(f"{order:9s} " + "  ".join(f"{p['labels']}:{p['mean_px']:.2f}" for p in curve))
    ltt = result["labels_to_target"]
    print(f"labels to {args.target:g} px: {ltt}")
    print(f"mean px at 25 labels (suggested): {result['mean_px_at_25_labels']}, after "
          f"{result['cpu_minutes_at_25_labels']} CPU-minutes of that order, "
          f"{result['training_minutes_at_25_labels']} minutes of its training)")  # fmt: skip
    print(f"forecast error (random curve, fitted at half): {result['forecast_error']}")
    print(f"manual clicks {result['manual_clicks']}, assisted without re-inference "
          f"{result['assisted_clicks_without_reinference']}, with hints "
          f"{result['assisted_clicks']} (click ratio {result['click_ratio']})")  # fmt: skip
    print(f"refresh seconds p50 {result['refresh_seconds_p50']}, p95 "
          f"{result['refresh_seconds_p95']}")  # fmt: skip
    print(f"cpu minutes {result['cpu_minutes']:.1f}")
    if ltt["suggested"] and ltt["random"]:
        ratio = ltt["random"] / ltt["suggested"]
        print(f"{'PASS' if ratio >= 1.5 else 'FAIL'}  suggested ≥ 1.5× fewer labels than "
              f"random: {ratio:.2f}×")  # fmt: skip
    fe = result["forecast_error"]
    if fe is not None:
        print(f"{'PASS' if fe <= 0.25 else 'FAIL'}  forecast within ±25 %: {fe:.0%}")


if __name__ == "__main__":
    sys.exit(main())
