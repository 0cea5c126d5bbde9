"""Quality benchmark: the seed and the default model on any COCO keypoints file, same budget.

Imports the file into a fresh temporary project with kpstudio's COCO importer (so the split is
the project's own rule), makes the training plan from its labels, trains `seed` then `default`
for the same time budget, and evaluates both on the val images in original pixels. Prints the
plan and one table; with --json, one JSON object instead: `dataset`, `plan`, and per model
(`seed`, `default`) `mean_px`, `median_px`, `pck@0.05`, `pck@0.1`, `ap`, `train_img_per_s`,
`minutes`.

`ap` (data with several objects per image only; null otherwise): pycocotools' COCOeval keypoint
AP, OKS with σ = 0.05 for every keypoint, of the model's predictions on the val images against
every labeled object there. Today's models predict one object per image, so their recall (and
AP) on such data is capped at one object per image. Figures on a machine shared with other
work are slower, never better, than on an idle one.

    python benchmarks/bench_quality.py --dataset ../shared/datasets/lp_mirror_mouse/annotations.json
                                       [--minutes 10] [--seed 0] [--json]
"""  # noqa: E501

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="COCO keypoints JSON")
    parser.add_argument("--minutes", type=float, default=10.0, help="budget per model")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    log = sys.stderr if args.json else sys.stdout
    report = run(args.dataset, args.minutes, args.seed, log)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_table(report)


def run(dataset: Path, minutes: float, seed: int, log=sys.stdout) -> dict:
    from kpstudio.ml.config import TrainConfig
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
        for arch in ARCHS:
            started = time.monotonic()
            result = train(data, TrainConfig(arch=arch, max_minutes=minutes, seed=seed),
                           on_progress=_progress(arch, log))  # fmt: skip
            report[arch] = _figures(result, (time.monotonic() - started) / 60.0)
            if plan.fingerprint.objects_per_image["max"] > 1:
                with contextlib.redirect_stdout(log):  # COCOeval prints its summary
                    report[arch]["ap"] = oks_ap(result.model_path, labels, data)
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


def oks_ap(model_path: Path, labels, data) -> float:
    """COCOeval keypoint AP of the model's predictions on the val images, against every
    labeled object of those images (OKS σ = OKS_SIGMA for each keypoint)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from kpstudio.ml.predictor import Predictor

    by_path = {(labels.root / im.path).resolve(): im for im in labels.images}
    val = data.indices("val")
    k = len(data.skeleton)
    predictions, bad = Predictor.from_file(model_path).predict_files([data.paths[i] for i in val])
    if bad:
        raise ValueError(f"could not read {bad[0][0]}: {bad[0][1]}")
    images, objects, found = [], [], []
    for image_id, (i, pred) in enumerate(zip(val, predictions), 1):
        entry = by_path[Path(data.paths[i]).resolve()]
        images.append({"id": image_id, "width": entry.width, "height": entry.height})
        for inst in entry.instances:
            labeled = inst.visibility > 0
            if not labeled.any():
                continue
            lo, hi = inst.xy[labeled].min(axis=0), inst.xy[labeled].max(axis=0)
            points = np.zeros((k, 3))
            points[labeled, :2], points[labeled, 2] = inst.xy[labeled], inst.visibility[labeled]
            objects.append({"id": len(objects) + 1, "image_id": image_id, "category_id": 1,
                            "keypoints": points.ravel().tolist(), "iscrowd": 0,
                            "num_keypoints": int(labeled.sum()),
                            "bbox": [*lo.tolist(), *(hi - lo).tolist()],
                            "area": float(max(1.0, np.prod(hi - lo)))})  # fmt: skip
        found.append({"image_id": image_id, "category_id": 1,
                      "keypoints": np.c_[pred.xy, np.ones(k)].ravel().tolist(),
                      "score": float(np.mean(pred.confidence))})  # fmt: skip
    truth = COCO()
    truth.dataset = {"images": images, "annotations": objects,
                     "categories": [{"id": 1, "name": "object",
                                     "keypoints": list(data.skeleton.keypoints)}]}  # fmt: skip
    truth.createIndex()
    evaluation = COCOeval(truth, truth.loadRes(found), "keypoints")
    evaluation.params.kpt_oks_sigmas = np.full(k, OKS_SIGMA)
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return float(evaluation.stats[0])


def _progress(arch: str, log):
    def report(event: dict) -> None:
        if event.get("phase") == "epoch_end" and (event["epoch"] == 1 or event["epoch"] % 10 == 0):
            print(f"  {arch:7s} epoch {event['epoch']:4d}  {event['seconds']:7.1f} s  "
                  f"val {event['val_px']:7.2f} px", file=log, flush=True)  # fmt: skip

    return report


def print_table(report: dict) -> None:
    head = f"\n{'model':8s}" + "".join(f"{c:>16s}" for c in COLUMNS)
    print(head)
    print("-" * (len(head) - 1))
    for arch in ARCHS:
        row = report[arch]
        print(f"{arch:8s}" + "".join(f"{_cell(row[c]):>16s}" for c in COLUMNS))
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
