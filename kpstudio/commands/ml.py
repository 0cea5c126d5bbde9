"""Model commands: train, evaluate, predict, export-model (these load TensorFlow)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from kpstudio.commands import printable, progress_bar

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter is not ours


def cmd_train(args) -> int:
    from kpstudio.core.project import Project
    from kpstudio.core.runs import get_run, record_training, run_folder, start_run
    from kpstudio.core.training_set import label_follower, labels_signature, snapshot
    from kpstudio.ml.config import TrainConfig
    from kpstudio.ml.planning import parse_setting
    from kpstudio.ml.strategy import cluster_resolver, is_chief
    from kpstudio.ml.train import train

    config = TrainConfig(
        arch=args.arch, input_size=args.input_size, epochs=args.epochs,
        max_minutes=args.max_minutes, batch_size=args.batch_size, seed=args.seed,
        augment=not args.no_augment, strategy=args.strategy, crop_size=args.crop,
        params={"stride": args.stride} if args.stride else {},
    )  # fmt: skip
    # Every worker of a cluster runs this command; only the chief records the run and writes
    # its files, the others read the project and train in step with it.
    chief = args.strategy != "multiworker" or is_chief(cluster_resolver())
    for setting in args.set:  # overrides of the plan, recorded with the run
        config = parse_setting(config, setting)
    # Read a snapshot and register the run, then let the project go: labeling in the studio
    # can go on while this trains.
    with Project.open(args.project, readonly=not chief) as project:
        data = snapshot(project)
        since = labels_signature(project) if args.follow else None  # changes after this
        resume = None
        if args.warm_from:
            if args.resume:
                raise ValueError("--from and --resume cannot be used together")
            previous = get_run(project, None if args.warm_from == "active" else args.warm_from)
            model_file = previous.model_file(project)
            if model_file is None:
                raise ValueError(f"run {previous.id} has no model to start from")
            # Its settings (and plan: the same scale, crops, stride), its weights, a fresh
            # optimizer and schedule on today's labels; what the user sets now still wins.
            config = TrainConfig.from_dict({
                **previous.config, "epochs": args.epochs, "max_minutes": args.max_minutes,
                "strategy": args.strategy, "warm_start": str(model_file),
            })  # fmt: skip
            for setting in args.set:
                config = parse_setting(config, setting)
        if args.resume:
            previous = get_run(project, args.resume)
            resume = run_folder(project.folder, previous.id)
            config = TrainConfig.from_dict({**previous.config, "epochs": args.epochs,
                                            "max_minutes": args.max_minutes,
                                            "strategy": args.strategy})  # fmt: skip
        run = start_run(project, config.arch, config.resolved().to_dict()) if chief else None
        folder = project.folder
    for note in data.notes:
        print(f"note: {note}", file=sys.stderr)
    reporter = _TrainReporter(args.json, config.resolved())

    refresh = None
    if args.follow and chief:
        refresh = label_follower(lambda: Project.open(folder, readonly=True), since)

    def training():
        return train(data, config, on_progress=reporter, resume=resume, refresh=refresh,
                     run_dir=run_folder(folder, run.id) if run else None)  # fmt: skip

    try:
        if run is None:
            result = training()
        else:
            result = record_training(lambda: Project.open(folder), run.id, training)
    finally:
        reporter.close()
    run_id = run.id if run else None
    summary = {"run": run_id, "status": result.status, "best_epoch": result.best_epoch,
               "model": str(result.model_path) if result.model_path else None,
               "replicas": result.replicas, "chief": chief, "notes": result.notes,
               **_headline(result.metrics)}  # fmt: skip
    if args.json:
        print(json.dumps({"event": "finished", **summary}))
    elif run is None:
        print(
            f"trained in step with the chief ({result.replicas} replicas): val mean "
            f"{summary['mean_px']:.2f} px; the chief records the run and writes the model"
        )
    else:
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
        print(f"run {run_id} {result.status}: val mean {summary['mean_px']:.2f} px, "
              f"PCK@5px {summary['pck@5px']:.3f}, model {result.model_path}")  # fmt: skip
        print(run_id)
    return 0


class _TrainReporter:
    """Progress as a tqdm bar (over the time budget when there is one, else over epochs), or
    as JSON lines (the start, then one per epoch) with --json."""

    def __init__(self, as_json: bool, config):
        self.as_json, self.bar = as_json, None
        self.budget = config.max_minutes * 60 if config.max_minutes else None
        self.epochs = config.epochs

    def __call__(self, event) -> None:
        from kpstudio.ml.events import EpochEnded, TrainingStarted

        if self.as_json and isinstance(event, TrainingStarted):
            print(json.dumps({"event": "started", **asdict(event)}), flush=True)
        if not isinstance(event, EpochEnded):
            return
        if self.as_json:
            fields = {k: v for k, v in asdict(event).items() if k not in ("epochs", "preview")}
            print(json.dumps({"event": "epoch", **fields}), flush=True)
            return
        if self.bar is None:
            from tqdm import tqdm

            total, unit = (round(self.budget), "s") if self.budget else (self.epochs, "epoch")
            self.bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")  # fmt: skip
        done = min(round(event.elapsed_s), self.bar.total) if self.budget else event.epoch
        self.bar.update(done - self.bar.n)
        self.bar.set_postfix(epoch=event.epoch, loss=f"{event.loss:.3f}",
                             val_px=f"{event.val_px:.2f}", best=f"{event.best_val_px:.2f}",
                             eta=f"{event.eta_s / 60:.1f}min")  # fmt: skip

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
    if model_file is None:
        raise ValueError(f"run {run.id} is {run.status} and has no model file to evaluate")
    indices = data.indices("val")
    split = "val"
    if len(indices) == 0:
        indices, split = np.arange(len(data)), "all labeled"
    predictor = Predictor.from_file(model_file)
    if tuple(predictor.skeleton.keypoints) != tuple(data.skeleton.keypoints):
        raise ValueError(f"run {run.id} was trained on keypoints "
                         f"{', '.join(predictor.skeleton.keypoints)}, the project now has "
                         f"{', '.join(data.skeleton.keypoints)}")  # fmt: skip
    found, bad = predictor.predict_files_instances([data.paths[i] for i in indices],
                                                   progress=progress_bar("evaluating"))
    if bad:
        raise ValueError(f"{len(bad)} val image(s) could not be read: {bad[0][0]}: {bad[0][1]}")
    if predictor.top_down:
        from kpstudio.core.instance_matching import evaluate_found

        report = evaluate_found(found, data, indices)
    else:
        pred = np.array([np.concatenate([o[0].xy, o[0].confidence[:, None]], axis=-1)
                         for o in found])  # fmt: skip
        report = evaluation_report(pred, data, indices)
    report["run"], report["split"] = run.id, split
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    head = _headline(report)
    print(f"run {run.id} ({run.arch}, {run.status}) on {len(indices)} {split} images")
    if predictor.top_down:
        print(_objects_line(report))
    print(f"  mean {head['mean_px']:.2f} px   median {head['median_px']:.2f} px   "
          f"PCK@0.05 {head['pck@0.05']:.3f}   PCK@0.1 {head['pck@0.1']:.3f}   "
          f"PCK@5px {head['pck@5px']:.3f}")  # fmt: skip
    print(f"  {'keypoint':<16}{'mean px':>9}{'median px':>11}{'PCK@0.05':>10}{'PCK@5px':>9}")
    for name, row in report["per_keypoint"].items():
        h = _headline(row)
        print(f"  {name:<16}{h['mean_px']:>9.2f}{h['median_px']:>11.2f}{h['pck@0.05']:>10.3f}"
              f"{h['pck@5px']:>9.3f}")  # fmt: skip
    return 0


def _objects_line(report: dict) -> str:
    """What a model that finds several objects per image found: the line before its px error."""
    def fmt(v):
        return "n/a" if v is None else f"{v:.3f}"

    return (f"  objects found {report['objects_found']}/{report['objects']} (OKS ≥ 0.5), images "
            f"with every object {100 * report['images_all_found']:.0f} %   AP {fmt(report['ap'])}"
            f"   AP50 {fmt(report['ap50'])}   AR {fmt(report['ar'])}   (px error: matched "
            "objects)")  # fmt: skip


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
    found, bad = predictor.predict_files_instances(files, progress=progress_bar("predicting"))
    preds = [p for objects in found for p in objects]
    write_predictions(preds, predictor.skeleton, args.output, objects=predictor.top_down)
    for path, message in bad:  # names from other people's folders: printed escaped
        print(f"skipped {printable(path)}: {printable(message)}", file=sys.stderr)
    several = f", {len(preds)} objects" if predictor.top_down else ""
    print(f"predicted {len(found)} images{several} → {printable(args.output)}")
    return 0


def cmd_export_model(args) -> int:
    import shutil

    from kpstudio.core.project import Project
    from kpstudio.core.runs import get_run
    from kpstudio.ml.export import export_model, with_project_images

    with Project.open(args.project, readonly=True) as project:
        run = get_run(project, args.run)
        model_file = run.model_file(project)
        labeled = project.images(status="done", limit=3) or project.images(limit=3)
        paths = [project.image_path(record) for record in labeled]
    out: Path = args.output
    if out.suffix == ".kpmodel":
        shutil.copyfile(model_file, out)
        print(f"wrote {out} (run {run.id})")
        return 0
    result = export_model(model_file, out, kind="tflite-fp16" if args.fp16 else None,
                          sample_images=with_project_images(paths))  # fmt: skip
    also = "".join(f" and {p}" for p in result.also)
    print(
        f"wrote {result.path}{also} ({result.kind}); parity with the in-app model: max "
        f"{result.max_px_diff:.4f} px over {result.checked_on} images {result.note}".rstrip()
    )
    return 0
