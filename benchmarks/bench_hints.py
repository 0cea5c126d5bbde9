"""Corrections with and without hints: how many clicks a user needs to bring every keypoint of
an image within a tolerance, starting from the model's suggestions.

Imports a COCO keypoints file into a fresh temporary project (the project's split), trains the
default model with hints (`--set hints=1`) for the budget, then simulates an annotator on each
val image (benchmarks/simulated_annotator.py: suggestions alone, or corrections re-inferred
with hints). Manual labeling costs one click per labeled keypoint.
Click-Pose (2023) reports >10× fewer corrections with this loop; this measures it here.

    python benchmarks/bench_hints.py --dataset ../shared/datasets/dlc_openfield_mouse/annotations.json
                                     [--minutes 5] [--tolerance 3] [--json]
"""  # noqa: E501

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from simulated_annotator import correct_image  # noqa: E402

from kpstudio.core.formats import read_labels  # noqa: E402
from kpstudio.core.image_reader import read_image  # noqa: E402
from kpstudio.core.project import Project  # noqa: E402
from kpstudio.core.project_transfer import import_labelset  # noqa: E402
from kpstudio.core.training_set import snapshot  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="COCO keypoints JSON")
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget")
    parser.add_argument("--tolerance", type=float, default=3.0, help="px")
    parser.add_argument("--model", type=Path, default=None,
                        help="a hint-conditioned .kpmodel to use instead of training one")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    log = sys.stderr if args.json else sys.stdout
    report = run(args.dataset, args.minutes, args.tolerance, args.model, log)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_report(report)


def run(dataset: Path, minutes: float, tolerance: float, model: Path | None, log) -> dict:
    from kpstudio.ml.config import TrainConfig
    from kpstudio.ml.planning import parse_setting
    from kpstudio.ml.predictor import Predictor
    from kpstudio.ml.train import train

    with tempfile.TemporaryDirectory(prefix="kpstudio-bench-hints-") as tmp:
        labels = read_labels("coco", dataset)
        with Project.create(Path(tmp) / "project") as project:
            import_labelset(project, labels)
            data = snapshot(project)
        trained = None
        if model is None:
            config = parse_setting(TrainConfig(max_minutes=minutes), "hints=1")
            print(f"training a hint-conditioned default model for {minutes:g} min …", file=log,
                  flush=True)  # fmt: skip
            result = train(data, config)
            model, trained = result.model_path, result.metrics.get("mean_px")
        predictor = Predictor.from_file(model)
        if not predictor.takes_hints:
            raise SystemExit(f"{model}: this model takes no hints (train it with --set hints=1)")
        return simulate(predictor, data, tolerance, trained, minutes)


def simulate(predictor, data, tolerance: float, trained_px, minutes) -> dict:
    names = data.skeleton.keypoints
    manual = without = with_hints = 0
    seconds = []
    per_image = []
    for i in data.indices("val"):
        image = read_image(data.paths[i])
        truth, labeled = data.xy[i].astype(np.float64), data.visibility[i] > 0
        manual += int(labeled.sum())
        clicks, hinted = correct_image(predictor, image, truth, labeled, tolerance, seconds)
        without += clicks
        with_hints += hinted
        per_image.append(hinted)
    n = max(1, len(per_image))
    return {
        "dataset_images": len(data), "val_images": len(per_image),
        "keypoints": len(names), "tolerance_px": tolerance,
        "model_val_mean_px": trained_px, "train_minutes": minutes if trained_px else None,
        "manual_clicks": manual, "clicks_without_hints": without,
        "clicks_with_hints": with_hints,
        "clicks_per_image": {"manual": manual / n, "without_hints": without / n,
                             "with_hints": with_hints / n},
        "ratio_to_manual": {"without_hints": without / max(1, manual),
                            "with_hints": with_hints / max(1, manual)},
        "reinference_ms_p50": 1000 * float(np.median(seconds)) if seconds else None,
    }  # fmt: skip


def print_report(r: dict) -> None:
    c, q = r["clicks_per_image"], r["ratio_to_manual"]
    print(f"\n{r['val_images']} val images × {r['keypoints']} keypoints, tolerance "
          f"{r['tolerance_px']:g} px; model val mean {r['model_val_mean_px']}")  # fmt: skip
    print(f"{'':22s}{'clicks':>10s}{'per image':>12s}{'vs manual':>12s}")
    print(f"{'manual':22s}{r['manual_clicks']:>10d}{c['manual']:>12.2f}{1.0:>12.2f}")
    print(f"{'suggestions, no hints':22s}{r['clicks_without_hints']:>10d}"
          f"{c['without_hints']:>12.2f}{q['without_hints']:>12.2f}")  # fmt: skip
    print(f"{'suggestions + hints':22s}{r['clicks_with_hints']:>10d}{c['with_hints']:>12.2f}"
          f"{q['with_hints']:>12.2f}")  # fmt: skip
    if r["reinference_ms_p50"] is not None:
        print(f"re-inference after a correction: median {r['reinference_ms_p50']:.1f} ms")


if __name__ == "__main__":
    main()
