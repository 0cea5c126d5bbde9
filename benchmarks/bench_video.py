"""Video benchmark: `kpstudio predict` on a whole video, end to end, with a model trained on the
openfield frames of the same arena.

Without --model it imports the openfield COCO set with the CLI's import into a temporary
project and trains the default model for --train-minutes with the CLI's train. Each measured
run is `kpstudio predict` (the CLI's own function) in a fresh child process, so its peak memory
(RSS) is its own:
  1. CSV alone: end-to-end fps (decode + inference + writing; the model's one-off conversion
     shown apart), stage timings, rows (one per frame), peak RSS;
  2. CSV with --smooth and --labeled-video: fps, the labeled video's frame count, peak RSS;
  3. CSV alone on the video concatenated 4× (with OpenCV, into a temporary file): peak RSS,
     which should match run 1's (memory flat in video length).
Then the snout track's frame-to-frame jitter on the stillest second of the video, raw and
smoothed, and the smoothing's lag on the fastest second (the shift that best aligns smoothed
and raw velocity; 0 = no lag). Targets on an idle 2-core machine: ≥ 150 fps CSV, ≥ 60 fps with
the labeled video.

    python benchmarks/bench_video.py [--model M.kpmodel | --train-minutes 10]
        [--video ../shared/datasets/dlc_openfield_mouse/videos/m3v1mp4.mp4] [--batch-size 8]
        [--runtime auto|onnxruntime|tensorflow] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATASET = REPO.parent / "shared" / "datasets" / "dlc_openfield_mouse"
VIDEO = DATASET / "videos" / "m3v1mp4.mp4"
TARGET_CSV_FPS, TARGET_LABELED_FPS = 150, 60
TRACKED = "snout"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="a .kpmodel (else train one)")
    parser.add_argument("--train-minutes", type=float, default=10.0)
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--keep", type=Path, default=None, help="keep the outputs in this folder")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        return child(args.child)

    work = Path(tempfile.mkdtemp(prefix="bench_video-"))
    out = args.keep or work
    out.mkdir(parents=True, exist_ok=True)
    try:
        model = args.model or train_model(args.dataset, work / "openfield", args.train_minutes)
        common = ["--batch-size", str(args.batch_size), "--runtime", args.runtime]
        csv_run = run_child(model, args.video, out / "video.csv", common)
        report("CSV", csv_run, rows(out / "video.csv"), TARGET_CSV_FPS)
        labeled = out / "video_labeled.mp4"
        smooth_run = run_child(model, args.video, out / "smooth.csv",
                               [*common, "--smooth", "--labeled-video", str(labeled)])  # fmt: skip
        report("CSV + --smooth + labeled video", smooth_run, rows(out / "smooth.csv"),
               TARGET_LABELED_FPS, f", labeled video frames {frame_count(labeled)}")  # fmt: skip
        long_video = work / "video_4x.mp4"
        t0 = time.perf_counter()
        n = concatenate(args.video, long_video, 4)
        print(f"(4× video: {n} frames written in {time.perf_counter() - t0:.0f} s)")
        long_run = run_child(model, long_video, work / "video_4x.csv", common)
        report("CSV on the video 4×", long_run, rows(work / "video_4x.csv"), None)
        ratio = long_run["peak_rss_mb"] / csv_run["peak_rss_mb"]
        print(f"peak RSS 1×: {csv_run['peak_rss_mb']:.0f} MB, 4×: {long_run['peak_rss_mb']:.0f} MB"
              f" (ratio {ratio:.2f}; flat means ≈ 1)")  # fmt: skip
        smoothing_figures(out / "smooth.csv", smooth_run["fps_video"])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def train_model(dataset: Path, project: Path, minutes: float) -> Path:
    from kpstudio.cli import main as cli
    from kpstudio.core.project import Project
    from kpstudio.core.runs import get_run

    print(f"training the default model on {dataset.name} for {minutes:g} min …", flush=True)
    assert cli(["import", str(project), str(dataset / "annotations.json"), "--format", "coco"]) == 0
    assert cli(["train", str(project), "--max-minutes", str(minutes)]) == 0
    with Project.open(project, readonly=True) as p:
        run = get_run(p)
        print(f"model: run {run.id}, val mean {run.metrics.get('mean_px', float('nan')):.2f} px")
        return run.model_file(p)


def run_child(model: Path, video: Path, out: Path, options: list[str]) -> dict:
    """`kpstudio predict` in a fresh process; its timings and peak RSS."""
    command = [sys.executable, __file__, "--child", str(model), str(video), "-o", str(out),
               *options]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"predict failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(argv: list[str]) -> None:
    """Run the CLI's predict once and print one JSON line of figures."""
    import kpstudio.ml.video_predict as vp
    from kpstudio.cli import main as cli

    captured = []
    real = vp.predict_video

    def timed(*a, **k):
        cpu = _cpu_seconds()
        captured.append(real(*a, **k))
        captured[-1].cpu = _cpu_seconds() - cpu
        return captured[-1]

    vp.predict_video = timed  # the command imports it when it runs: it gets this wrapper
    t0 = time.perf_counter()
    with open(os.devnull, "w") as quiet:
        stdout, sys.stdout = sys.stdout, quiet
        try:
            code = cli(["predict", *argv])
        finally:
            sys.stdout = stdout
    command_s = time.perf_counter() - t0
    if code != 0:
        sys.exit(code)
    t = captured[0]
    steady = t.wall - t.setup
    per = 1000.0 / t.frames
    print(json.dumps({
        "frames": t.frames, "command_s": command_s, "wall_s": t.wall, "setup_s": t.setup,
        "fps_video": float(_probe_fps(argv[1])), "fps": t.frames / t.wall,
        "fps_steady": t.frames / steady, "runtime": t.runtime,
        "ms_per_frame": {k: getattr(t, k) * per for k in
                         ("decode", "letterbox", "inference", "write", "render", "wait")},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cpu_ms_per_frame": 1000 * t.cpu / t.frames,
    }))  # fmt: skip


def _cpu_seconds() -> float:
    """CPU time of this process, all threads: what the run costs whatever else is running."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _probe_fps(video: str) -> float:
    from kpstudio.core.video_frames import probe_video

    return probe_video(video).fps


def report(name: str, r: dict, n_rows: int, target: float | None, extra: str = "") -> None:
    stages = ", ".join(f"{k} {v:.2f}" for k, v in r["ms_per_frame"].items())
    verdict = ""
    if target is not None:
        verdict = f"  [{'PASS' if r['fps'] >= target else 'FAIL'} ≥ {target} fps]"
    print(f"{name}: {r['fps']:.0f} fps end to end ({r['frames']} frames in {r['wall_s']:.1f} s, "
          f"of which {r['setup_s']:.1f} s model conversion; {r['fps_steady']:.0f} fps without "
          f"it; whole command {r['command_s']:.1f} s with model loading){verdict}")  # fmt: skip
    print(f"  rows {n_rows}{extra}, peak RSS {r['peak_rss_mb']:.0f} MB, runtime {r['runtime']}")
    print(f"  ms per frame (reader and renderer run in their own threads): {stages}")
    cores = os.cpu_count() or 1
    cpu = r["cpu_ms_per_frame"]
    print(f"  CPU time {cpu:.2f} ms per frame (all threads, set-up included): at most "
          f"{1000 * cores / cpu:.0f} fps on {cores} idle cores")  # fmt: skip


def rows(path: Path) -> int:
    with open(path, newline="") as f:
        return sum(1 for _ in csv.reader(f)) - 1


def frame_count(path: Path) -> int:
    import cv2

    cap, n = cv2.VideoCapture(str(path)), 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def concatenate(video: Path, out: Path, times: int) -> int:
    import cv2

    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS)
    size = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    n = 0
    for _ in range(times):
        cap = cv2.VideoCapture(str(video))
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            writer.write(frame)
            n += 1
        cap.release()
    writer.release()
    return n


def smoothing_figures(path: Path, fps: float) -> None:
    """Jitter of the tracked keypoint on the stillest second, raw vs smoothed, and the lag of
    the smoothed track on the fastest second."""
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    head, body = table[0], np.array([[float(c) if c else np.nan for c in r] for r in table[1:]])
    col = {name: i for i, name in enumerate(head)}
    raw = body[:, [col[f"{TRACKED}_x"], col[f"{TRACKED}_y"]]]
    smooth = body[:, [col[f"{TRACKED}_x_smooth"], col[f"{TRACKED}_y_smooth"]]]
    names = [h[:-2] for h in head if h.endswith("_x") and not h.endswith("_smooth")]
    smooth_all = np.stack([body[:, [col[f"{n}_x_smooth"], col[f"{n}_y_smooth"]]] for n in names])
    centre = np.mean(smooth_all, axis=0)  # NaN where any keypoint was dropped as unsure
    span = max(int(round(fps)), 5)  # one second
    windows = np.lib.stride_tricks.sliding_window_view(np.arange(len(raw)), span + 1)
    usable = [w for w in windows if np.isfinite(centre[w]).all()]
    # Still: the second where the raw snout stays closest to its mean position (its jitter is
    # then mostly the model's). Fast: the second the animal's smoothed centre travels furthest,
    # among seconds where every keypoint was found (where it was lost the raw track is noise).
    spread = [np.sqrt(np.mean(np.sum((raw[w] - raw[w].mean(0)) ** 2, axis=1))) for w in usable]
    travel = [np.sum(np.linalg.norm(np.diff(centre[w], axis=0), axis=1)) for w in usable]
    still, fast = int(usable[int(np.argmin(spread))][0]), int(usable[int(np.argmax(travel))][0])

    def jitter(track, a, order=1):
        seg = np.diff(track[a : a + span + 1], n=order, axis=0)
        return float(np.sqrt(np.nanmean(np.sum(seg**2, axis=1))))

    j_raw, j_smooth = jitter(raw, still), jitter(smooth, still)
    a_raw, a_smooth = jitter(raw, still, 2), jitter(smooth, still, 2)
    print(f"{TRACKED} jitter on the stillest second (frames {still}–{still + span}): "
          f"frame-to-frame movement raw {j_raw:.2f} px, smoothed {j_smooth:.2f} px "
          f"({100 * (1 - j_smooth / j_raw):.0f}% less); frame-to-frame change of that movement "
          f"(blind to steady drift) raw {a_raw:.2f} px, smoothed {a_smooth:.2f} px "
          f"({100 * (1 - a_smooth / a_raw):.0f}% less)")  # fmt: skip
    # Lag: the shift that best lays the smoothed track over the raw one (0 = none; a causal
    # filter such as a one-euro would come out positive).
    seg = np.arange(fast, fast + span + 1)
    lags = list(range(-5, 6))
    misfit = [np.sqrt(np.nanmean(np.sum((smooth[seg] - raw[np.clip(seg + lag, 0, len(raw) - 1)])
                                        ** 2, axis=1))) for lag in lags]  # fmt: skip
    lag = lags[int(np.argmin(misfit))]
    speed = np.linalg.norm(np.diff(centre[seg], axis=0), axis=1).mean()
    print(f"{TRACKED} on the fastest second (frames {fast}–{fast + span}, the animal moving "
          f"{speed * fps:.0f} px/s): lag {lag} frames ({1000 * lag / fps:.0f} ms); smoothed vs "
          f"raw RMS {misfit[lags.index(0)]:.2f} px at no shift, {misfit[lags.index(1)]:.2f} px "
          f"at one frame")  # fmt: skip


if __name__ == "__main__":
    main()
