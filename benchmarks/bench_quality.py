"""Quality benchmark: the seed and the default model on any COCO keypoints file, same budget.

Imports the file into a fresh temporary project with kpstudio's COCO importer (so the split is
the project's own rule), makes the training plan from its labels, trains `seed` then `default`
for the same time budget, and evaluates both on the val images in original pixels. Prints the
plan and one table; with --json, one JSON object instead: `dataset`, `plan`, and per model
(`seed`, `default`) `mean_px`, `median_px`, `pck@0.05`, `pck@0.1`, `ap`, `train_img_per_s`,
`minutes`.

`ap` (data with several objects per image only; null otherwise): pycocotools' COCOeval keypoint
AP, OKS with σ = 0.05 for every keypoint, of every object the model finds on the val images
against every labeled object there; the px error and PCK are then those of the objects matched
by OKS (≥ 0.5), and `objects_found` / `images_all_found` say how many were. The seed finds one
object per image, so its recall is capped there. Figures on a machine shared with other work are
slower, never better, than on an idle one.

    python benchmarks/bench_quality.py --dataset ../shared/datasets/lp_mirror_mouse/annotations.json
                                       [--minutes 10] [--seed 0] [--json]
"""  # noqa: E501

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kpstudio.core.formats import read_labels  # noqa: E402
from kpstudio.core.plan import make_plan  # noqa: E402
from kpstudio.core.project import Project  # noqa: E402
from kpstudio.core.project_transfer import import_labelset  # noqa: E402
from kpstudio.core.training_set import snapshot  # noqa: E402

ARCHS = ("seed", "default")
OKS_SIGMA = 0.05
SKIP_EPOCHS = 2  # the first epochs include tracing: left out of images/s when there are more
COLUMNS = ("mean_px", "median_px", "pck@0.05", "pck@0.1", "ap", "train_img_per_s", "minutes")
MULTI_COLUMNS = ("objects_found", "images_all_found", "ap50", "ar")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="COCO keypoints JSON")
    parser.add_argument("--minutes", type=float, default=10.0, help="budget per model")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--archs", default=",".join(ARCHS),
                        help="models to train, comma-separated (default: seed,default)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a planned setting of the default model (as `kpstudio "
                             "train --set`)")  # fmt: skip
    args = parser.parse_args()
    log = sys.stderr if args.json else sys.stdout
    archs = tuple(a.strip() for a in args.archs.split(",") if a.strip())
    report = run(args.dataset, args.minutes, args.seed, log, archs, args.set)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_table(report)


def run(dataset: Path, minutes: float, seed: int, log=sys.stdout, archs=ARCHS,
        settings=()) -> dict:  # fmt: skip
    from kpstudio.ml.config import TrainConfig
    from kpstudio.ml.planning import parse_setting
    from kpstudio.ml.train import train

    with tempfile.TemporaryDirectory(prefix="kpstudio-bench-quality-") as tmp:
        labels = read_labels("coco", dataset)
        with Project.create(Path(tmp) / "project") as project:
            import_labelset(project, labels)
            data = snapshot(project)
        plan = make_plan(data.fingerprint(), minutes)
        print(f"{dataset}: {len(data)} labeled images × {len(data.skeleton)} keypoints "
              f"({len(data.indices('train'))} train / {len(data.indices('val'))} val), "
              f"{minutes:g} min per model", file=log, flush=True)  # fmt: skip
        for sentence in plan.sentences:
            print(f"  plan: {sentence}", file=log)
        report = {"dataset": str(dataset), "plan": plan.to_dict()}
        for arch in archs:
            started = time.monotonic()
            config = TrainConfig(arch=arch, max_minutes=minutes, seed=seed)
            for text in settings if arch == "default" else ():
                config = parse_setting(config, text)
            result = train(data, config, on_progress=_progress(arch, log))
            report[arch] = _figures(result, (time.monotonic() - started) / 60.0)
            if plan.fingerprint.objects_per_image["max"] > 1:
                # One object per image for the seed (it finds one), every object top-down.
                report[arch].update(instance_figures(result.model_path, data))
                for key in ("mean_px", "median_px", "pck@0.05", "pck@0.1"):
                    report[arch][key] = report[arch][f"matched_{key}"]
            print(f"  {arch}: {result.status}, {len(result.history)} epochs; "
                  f"{'; '.join(result.notes) or 'no notes'}", file=log, flush=True)  # fmt: skip
    return report


def _figures(result, minutes: float) -> dict:
    m = result.metrics
    rates = [h["images_per_s"] for h in result.history]
    rates = rates[SKIP_EPOCHS:] or rates
    return {
        "mean_px": m.get("mean_px"),
        "median_px": m.get("median_px"),
        "pck@0.05": m.get("pck@0.05"),
        "pck@0.1": m.get("pck@0.1"),
        "ap": None,  # set by oks_ap for data with several objects per image
        "train_img_per_s": statistics.median(rates) if rates else None,
        "minutes": minutes,
        "epochs": len(result.history),
        "config": {
            k: result.config[k] for k in ("input_size", "crop_size", "batch_size", "params")
        },  # fmt: skip
    }


def instance_figures(model_path: Path, data) -> dict:
    """Every object the model finds on the val images, matched by OKS to every labeled one
    (kpstudio.core.instance_matching): COCOeval AP (σ = OKS_SIGMA per keypoint), objects and
    images found, px error and PCK on the matched objects."""
    from kpstudio.core.instance_matching import evaluate_found
    from kpstudio.ml.predictor import Predictor

    val = data.indices("val")
    found, bad = Predictor.from_file(model_path).predict_files_instances(
        [data.paths[i] for i in val])  # fmt: skip
    if bad:
        raise ValueError(f"could not read {bad[0][0]}: {bad[0][1]}")
    report = evaluate_found(found, data, val)
    return {"ap": report["ap"], "ap50": report["ap50"], "ar": report["ar"],
            "objects_found": f"{report['objects_found']}/{report['objects']}",
            "images_all_found": report["images_all_found"],
            "matched_mean_px": report["mean_px"], "matched_median_px": report["median_px"],
            "matched_pck@0.05": report.get("pck@0.05"),
            "matched_pck@0.1": report.get("pck@0.1")}  # fmt: skip


def _progress(arch: str, log):
    from kpstudio.ml.events import EpochEnded

    def report(event) -> None:
        if isinstance(event, EpochEnded) and (event.epoch == 1 or event.epoch % 10 == 0):
            print(f"  {arch:7s} epoch {event.epoch:4d}  {event.elapsed_s:7.1f} s  "
                  f"val {event.val_px:7.2f} px", file=log, flush=True)  # fmt: skip

    return report


def print_table(report: dict) -> None:
    head = f"\n{'model':8s}" + "".join(f"{c:>16s}" for c in COLUMNS)
    print(head)
    print("-" * (len(head) - 1))
    for arch in [a for a in ARCHS if a in report]:
        row = report[arch]
        print(f"{arch:8s}" + "".join(f"{_cell(row[c]):>16s}" for c in COLUMNS))
    for arch in [a for a in ARCHS if a in report and "objects_found" in report[a]]:
        row = report[arch]
        print(f"{arch:8s} several objects: " + "   ".join(f"{c} {_cell(row[c])}"
                                                         for c in MULTI_COLUMNS))  # fmt: skip
    if "seed" not in report or "default" not in report:
        return
    seed, default = report["seed"]["mean_px"], report["default"]["mean_px"]
    if seed and default and math.isfinite(seed) and math.isfinite(default):
        print(f"default / seed mean px error: {default / seed:.3f} ({seed / default:.1f}× lower)")
    print(
        "val images, original pixels; PCK of the labeled box diagonal; ap: OKS AP "
        f"(σ = {OKS_SIGMA}) where images hold several objects, else null"
    )


def _cell(value) -> str:
    if value is None:
        return "null"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
