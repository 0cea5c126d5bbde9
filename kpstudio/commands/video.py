"""Video commands: `predict` on videos (dispatched here by commands.ml) and `extract-frames`.

Only argparse-level code runs at import (kpstudio.cli adds the options from here); TensorFlow
is imported inside the functions that predict.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from kpstudio.commands import progress_bar

VIDEO_BATCH = 8  # kpstudio.ml.video_stages.BATCH_SIZE (that module imports TensorFlow)

PREDICT_EPILOG = """videos: one row per frame (and per instance) with the frame index, its time
(index / the video's frame rate) and x, y, confidence per keypoint, in video pixels. A
multi-instance (top-down) model's instances are linked across frames into tracks: each row also
has its track id (--animals N: there are N animals, ids 0 … N-1; DeepLabCut's multi-animal
CSV, one block of columns per animal, needs it). -o names the file for one video, a folder for
several (one <video>.csv or .json each). --format dlc writes DeepLabCut's analysis CSV (scorer /
bodyparts / coords header rows; with --smooth the smoothed points go to <name>_filtered.csv as
DeepLabCut's own filter writes them). Ctrl+C leaves a valid partial file and OUT.progress.json
saying where it stopped; --resume continues it."""


def add_predict_options(p) -> None:
    """The `predict` options that apply to videos (kpstudio.cli calls this)."""
    p.add_argument(
        "--format",
        choices=("csv", "json", "dlc"),
        default=None,
        help="videos: output format (default: from -o's suffix)",
    )
    p.add_argument(
        "--labeled-video",
        type=Path,
        default=None,
        metavar="OUT.mp4",
        help="videos: also write the video with the points drawn (.mp4/.avi; a "
        "folder for several videos)",
    )
    p.add_argument(
        "--smooth",
        action="store_true",
        help="videos: add Savitzky–Golay-smoothed x, y columns (raw kept)",
    )
    p.add_argument(
        "--resume", action="store_true", help="videos: continue a partial output where it stopped"
    )
    p.add_argument(
        "--animals",
        type=int,
        default=None,
        metavar="N",
        help="videos, multi-instance models: there are N animals (track ids never exceed them)",
    )
    p.add_argument("--batch-size", type=int, default=VIDEO_BATCH,
                   help="videos: frames per model call")  # fmt: skip
    p.add_argument(
        "--runtime",
        choices=("auto", "onnxruntime", "tensorflow"),
        default="auto",
        help="videos: what runs the model (auto: onnxruntime when installed)",
    )
    p.epilog = PREDICT_EPILOG


def add_extract_frames_parser(sub, handler) -> None:
    p = sub.add_parser(
        "extract-frames",
        help="add frames of a video to a project to label",
        description="Add frames of VIDEO to PROJECT as PNG images (under "
        "PROJECT/frames/<video name>/): --count N picks them evenly or by visual "
        "diversity; --outliers N runs the project's model on the whole video and "
        "picks frames it likely got wrong (low confidence, jumps, implausible "
        "bone lengths), spread over the video, with their predictions stored "
        "ready to correct.",
    )
    p.add_argument("project", type=Path)
    p.add_argument("video", type=Path)
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--count", type=int, help="this many frames, picked by --method")
    how.add_argument("--outliers", type=int, metavar="N", help="the N frames most likely wrong")
    p.add_argument(
        "--method",
        choices=("even", "diverse"),
        default="diverse",
        help="--count: evenly spaced or visually diverse (k-means on thumbnails)",
    )
    p.add_argument(
        "--run", default=None, help="--outliers: run whose model to use (default: the active one)"
    )
    p.set_defaults(handler=handler)


def is_video(path: Path) -> bool:
    from kpstudio.core.video_frames import VIDEO_SUFFIXES

    return Path(path).suffix.lower() in VIDEO_SUFFIXES and not Path(path).is_dir()


def refuse_video_options(args) -> None:
    """Predicting images: the options that only mean something for videos are an error, not
    silently ignored."""
    options = {"--format": args.format, "--labeled-video": args.labeled_video,
               "--smooth": args.smooth, "--resume": args.resume, "--animals": args.animals,
               "--runtime": args.runtime != "auto",
               "--batch-size": args.batch_size != VIDEO_BATCH}  # fmt: skip
    given = [name for name, value in options.items() if value]
    if given:
        raise ValueError(f"{', '.join(given)}: only for videos, and no video was given")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _outputs(args, videos: list[Path]) -> list[tuple[Path, Path | None]]:
    """(predictions file, labeled video or None) per video."""
    if len(videos) == 1:
        return [(args.output, args.labeled_video)]
    stems = [v.stem for v in videos]
    if len(set(stems)) < len(stems):
        raise ValueError("several videos share a name; predict them one at a time")
    if args.output.suffix or args.output.is_file():
        raise ValueError(f"{args.output}: with several videos, -o names a folder")
    suffix = ".json" if args.format == "json" else ".csv"
    labeled = args.labeled_video
    return [
        (args.output / f"{v.stem}{suffix}", labeled / f"{v.stem}_labeled.mp4" if labeled else None)
        for v in videos
    ]


def predict_videos(args) -> int:
    """`kpstudio predict MODEL VIDEO… -o OUT` (see PREDICT_EPILOG)."""
    from kpstudio.core.video_frames import probe_video
    from kpstudio.core.video_output import format_for

    videos = [Path(v) for v in args.inputs]
    others = [str(v) for v in videos if not is_video(v)]
    if others:
        raise ValueError(
            f"predict takes videos or images, not both: {', '.join(others)} is not a video"
        )
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, not {args.batch_size}")
    if args.animals is not None and args.animals < 1:
        raise ValueError(f"--animals must be at least 1, not {args.animals}")
    if args.resume and args.labeled_video:
        raise ValueError(
            "--labeled-video cannot be resumed (a video file cannot be appended "
            "to); resume without it, or start again"
        )
    outputs = _outputs(args, videos)
    formats = [format_for(out, args.format) for out, _ in outputs]
    infos = [probe_video(v) for v in videos]  # every video readable before any work starts
    from kpstudio.ml.predictor import Predictor

    predictor = Predictor.from_file(args.model)
    model_sha = _sha256(args.model)
    for info, (out, labeled), fmt in zip(infos, outputs, formats):
        _predict_one(args, predictor, model_sha, info, out, labeled, fmt)
    return 0


def _predict_one(args, predictor, model_sha, info, out: Path, labeled, fmt: str) -> None:
    from tqdm import tqdm

    from kpstudio.core.labeled_video import LabeledVideoWriter
    from kpstudio.core.track_resume import read_last_frames
    from kpstudio.core.tracks import SmoothingParams
    from kpstudio.core.video_output import (
        OutputError,
        TrackHeader,
        open_writer,
        progress_path,
        read_progress,
    )
    from kpstudio.ml.video_instances import is_multi_instance, resume_frames
    from kpstudio.ml.video_predict import predict_video

    multi = is_multi_instance(predictor)
    if args.animals is not None and not multi:
        raise ValueError(
            f"--animals: {Path(args.model).name} finds one animal per frame (it is not a "
            "multi-instance model)"
        )
    header = TrackHeader(
        info.path.name,
        Path(args.model).name,
        tuple(predictor.skeleton.keypoints),
        float(info.fps),
        int(info.frames),
        info.width,
        info.height,
        bool(args.smooth),
        tracked=multi,
        animals=args.animals or 0,
    )
    state = {"video": str(info.path.resolve()), "model_sha256": model_sha, "format": fmt}
    if multi:
        state["animals"] = args.animals
    resume = read_progress(out)
    if resume is not None and not args.resume:
        raise OutputError(
            f"{out} is a partial result (stopped at frame {resume['frames_done']});"
            f" add --resume to continue it, or delete it and "
            f"{progress_path(out).name} to start again"
        )
    if args.resume and resume is None and out.exists():
        print(f"{out} is complete; nothing to resume")
        return
    if resume is not None:
        for key in state:
            if resume.get(key) != state[key]:
                raise OutputError(
                    f"{out} was started with another {key.replace('_', ' ')} "
                    f"({resume.get(key)}); cannot resume it with {state[key]}"
                )
    drawn = (
        LabeledVideoWriter(labeled, predictor.skeleton, info.fps, info.width, info.height)
        if labeled
        else None
    )
    try:
        writer = open_writer(out, fmt, header, resume, state)
    except BaseException:
        if drawn is not None:
            drawn.close()
        raise
    start = writer.frames_done
    bar = tqdm(
        total=info.frames,
        initial=start,
        unit="frame",
        desc=info.path.name,
        file=sys.stderr,
        disable=None,
        dynamic_ncols=True,
    )

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    smoothing = SmoothingParams.for_fps(info.fps) if args.smooth else None
    earlier, next_track = None, 0
    if multi and resume is not None:  # tracking goes on from the file's last frames
        earlier = read_last_frames(out, fmt, header, resume, resume_frames(info.fps, smoothing))
        next_track = int(resume.get("next_track", 0))
    try:
        times = predict_video(
            predictor,
            info,
            writer,
            start=start,
            smoothing=smoothing,
            labeled=drawn,
            batch_size=args.batch_size,
            runtime=args.runtime,
            progress=progress,
            animals=args.animals,
            earlier=earlier,
            next_track=next_track,
        )
    except BaseException as exc:
        bar.close()
        writer.close(complete=False)
        if isinstance(exc, KeyboardInterrupt):
            print(
                f"stopped at frame {writer.frames_done} of ~{info.frames}: {out} holds the "
                "frames before it; run the same command with --resume to continue",
                file=sys.stderr,
            )
        raise
    bar.close()
    writer.close(complete=True)
    print(times.summary(), file=sys.stderr)
    extra = f" and {labeled} ({drawn.frames} frames)" if drawn else ""
    print(f"predicted {writer.frames_done} frames of {info.path.name} → {out}{extra}")


def cmd_extract_frames(args) -> int:
    from kpstudio.core.image_reader import scan_image
    from kpstudio.core.project import Project
    from kpstudio.core.video_frames import extract_frames, probe_video

    info = probe_video(args.video)  # a bad video fails before the project is touched
    with Project.open(args.project, readonly=True) as project:
        out_dir = project.folder / "frames" / args.video.stem
    n = args.count if args.count is not None else args.outliers
    if n < 1:
        raise ValueError(f"cannot add {n} frames; ask for at least one")
    if args.outliers is None:
        files = extract_frames(
            args.video, out_dir, n, args.method, progress=progress_bar("reading")
        )
        infos = [scan_image(f) for f in files]
        with Project.open(args.project) as project:
            project.add_images((i.path, i.width, i.height, i.sha256) for i in infos)
        print(f"added {len(infos)} frames of {args.video.name} to {args.project} ({args.method})")
        return 0
    return _extract_outliers(args, info, out_dir, n)


def _extract_outliers(args, info, out_dir: Path, count: int) -> int:
    import numpy as np

    from kpstudio.core.image_reader import scan_image
    from kpstudio.core.predictions import store_predictions
    from kpstudio.core.project import Project
    from kpstudio.core.runs import get_run
    from kpstudio.core.tracks import (
        BoneStats,
        animal_outlier_scores,
        bone_pairs,
        outlier_scores,
        pick_spread,
        track_arrays,
    )
    from kpstudio.core.training_set import snapshot
    from kpstudio.core.video_frames import frame_file_name, save_frames
    from kpstudio.ml.predictor import Predictor
    from kpstudio.ml.video_instances import (
        TrackArraySink,
        is_multi_instance,
        predict_video_instances,
    )
    from kpstudio.ml.video_predict import ArraySink, predict_video

    with Project.open(args.project, readonly=True) as project:
        run = get_run(project, args.run)
        model_file = run.model_file(project)
        labels = snapshot(project)
    skeleton = labels.skeleton
    predictor = Predictor.from_file(model_file)
    if tuple(predictor.skeleton.keypoints) != tuple(skeleton.keypoints):
        raise ValueError(
            f"run {run.id} was trained on keypoints "
            f"{', '.join(predictor.skeleton.keypoints)}, the project now has "
            f"{', '.join(skeleton.keypoints)}"
        )
    k = len(skeleton)
    index = {name: i for i, name in enumerate(skeleton.keypoints)}
    pairs = bone_pairs(k, [(index[a], index[b]) for a, b in skeleton.edges])
    labeled_xy = labels.objects()[0].reshape(-1, k, 2)  # every labeled animal's bones
    bones = BoneStats.from_labels(labeled_xy, pairs) if len(labels) else None
    if is_multi_instance(predictor):  # several animals: each one's track is scored on its own
        tracks = TrackArraySink()
        predict_video_instances(predictor, info, tracks, progress=progress_bar("predicting"))
        xy, conf, score = track_arrays(tracks.upto or 0, k, *tracks.rows())
        scores = animal_outlier_scores(xy, conf, bones)

        def found(i):  # every animal found on frame i, the surest first
            slots = [n for n in np.argsort(-np.nan_to_num(score[i], nan=-1.0))
                     if np.isfinite(score[i, n])]  # fmt: skip
            return [(xy[i, n], conf[i, n]) for n in slots] or None
    else:
        sink = ArraySink()
        predict_video(predictor, info, sink, progress=progress_bar("predicting"))
        xy, conf = sink.arrays()
        scores = outlier_scores(xy, conf, bones)

        def found(i):
            return xy[i], conf[i]

    taken = [i for i in range(len(xy)) if (out_dir / frame_file_name(info.path, i)).exists()]
    picks = pick_spread(scores, count, exclude=taken)
    saved = save_frames(info.path, out_dir, picks)
    try:
        infos = {i: scan_image(path) for i, path in saved.items()}
        with Project.open(args.project) as project:
            ids = project.add_images((f.path, f.width, f.height, f.sha256) for f in infos.values())
            answers = {image_id: found(i) for image_id, i in zip(ids, infos)}
            store_predictions(project, run.id, {i: a for i, a in answers.items() if a is not None})
    except BaseException:
        for path in saved.values():  # nothing half-added: the frames go with the failed write
            path.unlink(missing_ok=True)
        raise
    spread = ", ".join(str(i) for i in sorted(saved))
    print(
        f"added {len(saved)} frames of {info.path.name} to {args.project} with run {run.id}'s "
        f"predictions (frames {spread}; median outlier score {np.median(scores[picks]):.1f}, "
        f"video median {np.median(scores):.1f})"
    )
    return 0
