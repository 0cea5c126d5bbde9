"""The video player's frames: how long from asking for a frame to having it in the UI thread, and
how smoothly it plays.

Prints, for a video (default: the openfield recording in ../shared, else a synthetic 640×480
one): the latency from VideoFrameSource.request to frame_ready in the UI thread for the next
frame, a step back (kept frames), and a random seek; then plays the video in the player for a
few seconds and prints the frames shown per second against the video's rate and the UI event
loop's lateness p50/p99 meanwhile. With --model, the same with the model's live prediction on
each frame, then "Predict whole video" in its Task for --seconds while the player scrubs: the
frames analysed per second, the event loop's lateness, and how long Cancel takes.

Targets: next frame ≤ 10 ms (640×480); event loop p99 ≤ 50 ms while playing and while a video
is analysed. A random seek costs what the file's keyframe spacing makes it (decoding from the
keyframe before the frame): it is printed, and scrubbing stays live however slow it is, as the
newest request replaces those not started.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_player.py [--video V] [--model M.kpmodel]
        [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from latency_probe import LatencyProbe  # noqa: E402
from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QWidget  # noqa: E402

from kpstudio.core.video_frames import probe_video  # noqa: E402
from kpstudio.gui.app import studio_application  # noqa: E402
from kpstudio.gui.video_frame_source import VideoFrameSource  # noqa: E402
from kpstudio.gui.video_player import VideoPlayer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OPENFIELD = REPO.parent / "shared/datasets/dlc_openfield_mouse/videos/m3v1mp4.mp4"


def synthetic_video(folder: Path, frames: int = 300) -> Path:
    path = folder / "synthetic.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 480))
    rng = np.random.default_rng(0)
    background = rng.integers(0, 256, (480, 640, 3), np.uint8)
    for i in range(frames):
        frame = background.copy()
        cv2.circle(frame, (50 + i % 540, 240), 20, (255, 255, 255), -1)
        writer.write(frame)
    writer.release()
    return path


def wait_frame(source: VideoFrameSource, index: int, predict: bool = True) -> float:
    """Milliseconds from request to frame_ready delivered in this (the UI) thread."""
    loop, got = QEventLoop(), []

    def ready(i, frame, preds):
        if i == index:
            got.append(time.perf_counter())
            loop.quit()

    source.frame_ready.connect(ready)
    t0 = time.perf_counter()
    source.request(index, predict)
    QTimer.singleShot(10_000, loop.quit)
    if not got:
        loop.exec()
    source.frame_ready.disconnect(ready)
    if not got:
        raise TimeoutError(f"frame {index} did not arrive in 10 s")
    return (got[0] - t0) * 1000


def latencies(source: VideoFrameSource, frames: int, label: str) -> None:
    rng = np.random.default_rng(1)
    wait_frame(source, 0)
    nxt = [wait_frame(source, i) for i in range(1, 61)]
    back = [wait_frame(source, i) for i in range(59, 39, -1)]
    seeks = [wait_frame(source, int(i)) for i in rng.integers(0, frames, 20)]
    for name, values in (("next frame", nxt), ("step back (kept)", back),
                         ("random seek", seeks)):  # fmt: skip
        print(f"{label}{name:>18}: median {statistics.median(values):6.1f} ms, "
              f"max {max(values):6.1f} ms ({len(values)} requests)")  # fmt: skip


def playback(player: VideoPlayer, seconds: float, label: str) -> None:
    shown: list[int] = []
    player.frame_shown.connect(shown.append)
    probe = LatencyProbe()
    probe.start()
    player.play()
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    player.pause()
    late = probe.stop()
    player.frame_shown.disconnect(shown.append)
    distinct = len(set(shown))
    print(f"{label}playback: {distinct / seconds:5.1f} frames shown per second "
          f"(video {player.fps:g} fps), event loop late p50 {np.percentile(late, 50):.1f} ms, "
          f"p99 {np.percentile(late, 99):.1f} ms")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=None)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    app = studio_application()
    video = args.video or (OPENFIELD if OPENFIELD.is_file() else None)
    if video is None:
        video = synthetic_video(Path(tempfile.mkdtemp(prefix="bench-player-")))
    info = probe_video(video)
    print(f"{video.name}: {info.frames} frames, {info.width}×{info.height}, {info.fps:g} fps")
    predictor = None
    if args.model is not None:
        from kpstudio.ml.predictor import Predictor

        predictor = Predictor.from_file(args.model)
    runs = [("", None)] + ([("with the model: ", predictor)] if predictor is not None else [])
    for label, model in runs:
        source = VideoFrameSource(video)
        source.set_predictor(model)
        latencies(source, info.frames, label)
        source.close()
        host = QWidget()
        player = VideoPlayer(host, document=lambda: None, run_task=None,
                             status=lambda *a: None)  # fmt: skip
        player._on_video_probed(info)  # no project: no model load, no Task
        if model is not None:
            player.predictor, player.run_id = model, "bench"
            player._use_model(model)
        player.show()
        playback(player, args.seconds, label)
        player.close()
    if predictor is not None:
        analyse(video, info, predictor, args.model, args.seconds)
    app.quit()
    return 0


def analyse(video: Path, info, predictor, model: Path, seconds: float) -> None:
    """Predict the whole video in the player's Task for `seconds` while scrubbing, then Cancel."""
    from functools import partial

    from kpstudio.core.project import Project
    from kpstudio.core.runs import record_run
    from kpstudio.gui.document import Document
    from kpstudio.gui.tasks import start_task

    folder = Path(tempfile.mkdtemp(prefix="bench-player-")) / "p"
    project = Project.create(folder, predictor.skeleton)
    record_run(project, "bench", "default", "finished", {}, model_path=model)
    doc = Document(project)
    host = QWidget()
    host.tasks = []
    player = VideoPlayer(host, document=lambda: doc, run_task=partial(start_task, host),
                         status=lambda *a: None)  # fmt: skip
    player._on_video_probed(info)
    player.predictor, player.run_id = predictor, "bench"  # as if loaded: no second load
    player.show()
    done: list[tuple[int, int]] = []
    player.predict_whole_video()
    player.analysis.worker.progressed.connect(lambda d, t: done.append((time.perf_counter(), d)))
    probe = LatencyProbe()
    probe.start()
    scrub = QTimer()
    rng = np.random.default_rng(2)
    scrub.timeout.connect(lambda: player.seek(int(rng.integers(0, info.frames))))
    scrub.start(200)  # the user scrubs meanwhile: five jumps a second
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    scrub.stop()
    late = probe.stop()
    player.analysis.dialog.canceled.emit()  # what the dialog's Cancel button does
    t0 = time.perf_counter()
    while player.analysis is not None:
        app_loop = QEventLoop()
        QTimer.singleShot(20, app_loop.quit)
        app_loop.exec()
    cancel_ms = (time.perf_counter() - t0) * 1000
    fps = (done[-1][1] - done[0][1]) / (done[-1][0] - done[0][0]) if len(done) > 1 else 0.0
    print(f"predict whole video: {fps:.0f} frames/s analysed while scrubbing, event loop late "
          f"p50 {np.percentile(late, 50):.1f} ms, p99 {np.percentile(late, 99):.1f} ms; Cancel "
          f"took {cancel_ms:.0f} ms and kept {player.stored.frames if player.stored else 0} "
          f"frames")  # fmt: skip
    player.close()
    project.close()


if __name__ == "__main__":
    sys.exit(main())
