"""Model commands: train, evaluate, predict, export-model (these load TensorFlow)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from kpstudio.commands import progress_bar

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter is not ours


def cmd_train(args) -> int:
    from kpstudio.core.project import Project
    from kpstudio.core.runs import get_run, new_run_id, record_run
    from kpstudio.core.training_set import snapshot
    from kpstudio.ml.config import TrainConfig
    from kpstudio.ml.train import train

    config = TrainConfig(
        arch=args.arch, input_size=args.input_size, epochs=args.epochs,
        max_minutes=args.max_minutes, batch_size=args.batch_size, seed=args.seed,
        augment=not args.no_augment, strategy=args.strategy,
    )  # fmt: skip
    # Read a snapshot and register the run, then let the project go: labeling in the studio
    # can go on while this trains.
    with Project.open(args.project) as project:
        data = snapshot(project)
        resume = None
        if args.resume:
            previous = get_run(project, args.resume)
            resume = project.folder / "runs" / previous.id
            config = TrainConfig.from_dict({**previous.config, "epochs": args.epochs,
                                            "max_minutes": args.max_minutes})  # fmt: skip
        run_id = new_run_id(config.arch)
        record_run(project, run_id, config.arch, "running", config.resolved().to_dict())
    for note in data.notes:
        print(f"note: {note}", file=sys.stderr)
    reporter = _TrainReporter(args.json, config.resolved())
    try:
        result = train(data, config, on_progress=reporter, run_dir=args.project / "runs" / run_id,
                       resume=resume)  # fmt: skip
    except BaseException as exc:
        reporter.close()
        with Project.open(args.project) as project:
            record_run(project, run_id, config.arch, "failed", config.resolved().to_dict(),
                       metrics={"error": f"{type(exc).__name__}: {exc}"})  # fmt: skip
        raise
    reporter.close()
    with Project.open(args.project) as project:
        record_run(project, run_id, config.arch, result.status, result.config, result.history,
                   result.metrics, result.model_path)  # fmt: skip
    summary = {"run": run_id, "status": result.status, "best_epoch": result.best_epoch,
               "model": str(result.model_path), "notes": result.notes,
               **_headline(result.metrics)}  # fmt: skip
    if args.json:
        print(json.dumps({"event": "finished", **summary}))
    else:
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
        print(f"run {run_id} {result.status}: val mean {summary['mean_px']:.2f} px, "
              f"PCK@5px {summary['pck@5px']:.3f}, model {result.model_path}")  # fmt: skip
        print(run_id)
    return 0


class _TrainReporter:
    """Progress as a tqdm bar (over the time budget when there is one, else over epochs), or
    as JSON lines (one per epoch) with --json."""

    def __init__(self, as_json: bool, config):
        self.as_json, self.bar = as_json, None
        self.budget = config.max_minutes * 60 if config.max_minutes else None
        self.epochs = config.epochs

    def __call__(self, event: dict) -> None:
        if event.get("phase") != "epoch_end":
            return
        if self.as_json:
            fields = ("epoch", "loss", "val_px", "best_val_px", "lr", "elapsed_s", "eta_s",
                      "images_per_s")  # fmt: skip
            print(json.dumps({"event": "epoch", **{k: event.get(k) for k in fields}}), flush=True)
            return
        if self.bar is None:
            from tqdm import tqdm

            total, unit = (round(self.budget), "s") if self.budget else (self.epochs, "epoch")
            self.bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")  # fmt: skip
        done = min(round(event["elapsed_s"]), self.bar.total) if self.budget else event["epoch"]
        self.bar.update(done - self.bar.n)
        self.bar.set_postfix(epoch=event["epoch"], loss=f"{event['loss']:.3f}",
                             val_px=f"{event['val_px']:.2f}", best=f"{event['best_val_px']:.2f}",
                             eta=f"{event['eta_s'] / 60:.1f}min")  # fmt: skip

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _headline(metrics: dict) -> dict:
    def get(key):
        value = metrics.get(key)
        return float("nan") if value is None else value

    return {"mean_px": get("mean_px"), "median_px": get("median_px"),
            "pck@0.05": get("pck@0.05"), "pck@0.1": get("pck@0.1"),
            "pck@5px": get("pck@5.0px")}  # fmt: skip


def cmd_evaluate(args) -> int:
    import numpy as np

    from kpstudio.core.project import Project
    from kpstudio.core.runs import get_run
    from kpstudio.core.training_set import snapshot
    from kpstudio.ml.evaluate import evaluation_report
    from kpstudio.ml.predictor import Predictor

    with Project.open(args.project, readonly=True) as project:
        run = get_run(project, args.run)
        model_file = run.model_file(project)
        data = snapshot(project)
    indices = data.indices("val")
    split = "val"
    if len(indices) == 0:
        indices, split = np.arange(len(data)), "all labeled"
    predictor = Predictor.from_file(model_file)
    if tuple(predictor.skeleton.keypoints) != tuple(data.skeleton.keypoints):
        raise ValueError(f"run {run.id} was trained on keypoints "
                         f"{', '.join(predictor.skeleton.keypoints)}, the project now has "
                         f"{', '.join(data.skeleton.keypoints)}")  # fmt: skip
    preds, bad = predictor.predict_files([data.paths[i] for i in indices],
                                         progress=progress_bar("evaluating"))  # fmt: skip
    if bad:
        raise ValueError(f"{len(bad)} val image(s) could not be read: {bad[0][0]}: {bad[0][1]}")
    pred = np.array([np.concatenate([p.xy, p.confidence[:, None]], axis=-1) for p in preds])
    report = evaluation_report(pred, data, indices)
    report["run"], report["split"] = run.id, split
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    head = _headline(report)
    print(f"run {run.id} ({run.arch}) on {len(indices)} {split} images")
    print(f"  mean {head['mean_px']:.2f} px   median {head['median_px']:.2f} px   "
          f"PCK@0.05 {head['pck@0.05']:.3f}   PCK@0.1 {head['pck@0.1']:.3f}   "
          f"PCK@5px {head['pck@5px']:.3f}")  # fmt: skip
    print(f"  {'keypoint':<16}{'mean px':>9}{'median px':>11}{'PCK@0.05':>10}{'PCK@5px':>9}")
    for name, row in report["per_keypoint"].items():
        h = _headline(row)
        print(f"  {name:<16}{h['mean_px']:>9.2f}{h['median_px']:>11.2f}{h['pck@0.05']:>10.3f}"
              f"{h['pck@5px']:>9.3f}")  # fmt: skip
    return 0


def cmd_predict(args) -> int:
    from kpstudio.commands.video import is_video, predict_videos, refuse_video_options

    if any(is_video(p) for p in args.inputs):
        return predict_videos(args)
    refuse_video_options(args)
    from kpstudio.core.prediction_files import write_predictions
    from kpstudio.ml.predictor import Predictor, collect_image_files

    files = collect_image_files(args.inputs)
    if not files:
        raise FileNotFoundError("no images found in " + ", ".join(map(str, args.inputs)))
    predictor = Predictor.from_file(args.model)
    preds, bad = predictor.predict_files(files, progress=progress_bar("predicting"))
    write_predictions(preds, predictor.skeleton, args.output)
    for path, message in bad:
        print(f"skipped {path}: {message}", file=sys.stderr)
    print(f"predicted {len(preds)} images → {args.output}")
    return 0


def cmd_export_model(args) -> int:
    import shutil

    from kpstudio.core.project import Project
    from kpstudio.core.runs import get_run
    from kpstudio.ml.export import export_model

    with Project.open(args.project, readonly=True) as project:
        run = get_run(project, args.run)
        model_file = run.model_file(project)
    out: Path = args.output
    if out.suffix == ".kpmodel":
        shutil.copyfile(model_file, out)
        print(f"wrote {out} (run {run.id})")
        return 0
    result = export_model(model_file, out, kind="tflite-fp16" if args.fp16 else None)
    print(
        f"wrote {result.path} ({result.kind}); parity with the in-app model: max "
        f"{result.max_px_diff:.4f} px over {result.checked_on} images {result.note}".rstrip()
    )
    return 0
