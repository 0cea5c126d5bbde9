"""Assisted labeling commands: `kpstudio suggest` (which images to label next) and
`kpstudio learning-curve` (will more labels help?)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from kpstudio.commands import printable, progress_bar

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def suggestion_scorer(project, progress=None, should_stop=None):
    """(scorer, run id, rule): the active model's uncertainty as a suggest scorer, or None and
    why not (no trained run, a missing model file, a model of other keypoints). Loads
    TensorFlow only if a model exists."""
    from kpstudio.core.project import ProjectError
    from kpstudio.core.runs import get_run
    from kpstudio.ml.uncertainty import model_scorer

    try:
        run = get_run(project)
    except ProjectError:
        return None, None, "diversity alone: no trained model yet"
    path = run.model_file(project)
    if path is None or not path.exists():
        return None, None, f"diversity alone: the model file of run {run.id} is missing"
    keypoints = project.skeleton.keypoints if project.skeleton else ()
    try:
        scorer = model_scorer(path, keypoints, progress, should_stop)
    except ValueError as exc:
        return None, None, f"diversity alone: {exc}"
    return scorer, run.id, f"uncertainty of run {run.id}, weighted by diversity"


def cmd_suggest(args) -> int:
    from kpstudio.core.image_features import cache_path, image_features
    from kpstudio.core.project import Project
    from kpstudio.core.suggest import Inputs, choose

    if args.count < 1:
        raise ValueError(f"--count must be 1 or more, not {args.count}")
    quiet = args.json
    with Project.open(args.project, readonly=True) as project:
        inputs = Inputs.read(project)
        scorer, run_id, rule = (None, None, "diversity alone (--no-model)")
        if not args.no_model:
            scorer, run_id, rule = suggestion_scorer(
                project, None if quiet else progress_bar("scoring with the model")
            )
    features = image_features(inputs.ids, inputs.paths, cache_path(inputs.project_folder),
                              None if quiet else progress_bar("reading images"))  # fmt: skip
    picks = choose(inputs, args.count, features, scorer)
    if args.json:
        print(json.dumps({"rule": rule, "run": run_id,
                          "suggestions": [s.to_dict() for s in picks]}, indent=2))  # fmt: skip
        return 0
    print(f"chosen by {rule}")
    if not picks:
        print("no unlabeled image left to suggest")
    for rank, s in enumerate(picks, 1):
        why = f"uncertainty {s.uncertainty:.2f}, " if s.uncertainty is not None else ""
        far = "no labeled image yet" if np.isinf(s.distance) else f"distance {s.distance:.2f}"
        print(f"{rank:3d}. {printable(s.path)}  ({why}{far})")
    return 0


def subset_points(data, fractions, minutes: float, seed: int = 0, on_point=None) -> list[dict]:
    """Train short runs on nested subsets of the train images (the val images stay the same)
    and return one point per subset: {"labels", "train_images", "mean_px", "fraction"}.
    `labels` counts train and val images, as the runs history does (labeled images)."""
    from kpstudio.ml.config import TrainConfig
    from kpstudio.ml.train import train

    train_idx, val_idx = data.indices("train"), data.indices("val")
    order = np.random.default_rng(seed).permutation(train_idx)
    points = []
    with tempfile.TemporaryDirectory(prefix="kpstudio-curve-") as tmp:
        for i, fraction in enumerate(sorted(fractions)):
            n = max(1, round(fraction * len(order)))
            sub = data.subset(sorted([*order[:n], *val_idx]))
            config = TrainConfig(max_minutes=minutes, seed=seed)
            result = train(sub, config, run_dir=Path(tmp) / f"subset-{i}")
            point = {"fraction": fraction, "train_images": n, "labels": n + len(val_idx),
                     "mean_px": result.metrics.get("mean_px"), "minutes": minutes}  # fmt: skip
            points.append(point)
            if on_point is not None:
                on_point(point)
    return points


def cmd_learning_curve(args) -> int:
    from kpstudio.core.learning_curve import forecast, project_points, write_subset_points
    from kpstudio.core.project import Project
    from kpstudio.core.training_set import snapshot

    if args.target <= 0:
        raise ValueError(f"--target must be a positive number of px, not {args.target}")
    with Project.open(args.project, readonly=True) as project:
        labels_now = project.counts()["labeled_images"]
        data = snapshot(project) if args.train_subsets else None
        folder = project.folder
    if data is not None:
        fractions = [float(f) for f in args.fractions.split(",") if f.strip()]
        if not fractions or any(not 0 < f <= 1 for f in fractions):
            raise ValueError(f"--fractions takes shares in (0, 1] like 0.25,0.5,1, "
                             f"not {args.fractions!r}")  # fmt: skip

        def report(point):
            if not args.json:
                print(f"subset {point['train_images']} train images: val mean "
                      f"{point['mean_px']:.2f} px", file=sys.stderr)  # fmt: skip

        points = subset_points(data, fractions, args.minutes, args.seed, report)
        write_subset_points(folder, points)
    with Project.open(folder, readonly=True) as project:
        points = project_points(project)
    fc = forecast(points, args.target, labels_now)
    if args.json:
        print(json.dumps({"points": [{"labels": n, "mean_px": e} for n, e in points],
                          **fc.to_dict()}, indent=2))  # fmt: skip
        return 0
    for n, err in points:
        print(f"{n:6d} labels  val mean {err:.2f} px")
    print(fc.sentence())
    return 0
