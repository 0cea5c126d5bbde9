"""The player's long jobs, run as Tasks (kpstudio.gui.tasks): load the model, predict the whole
video, add a frame to the project.

Each function returns a job `job(progress, should_stop)` for a Task's thread. TensorFlow is
imported inside the jobs, in that thread, never when the studio imports this module. Writes go
through the Document's worker handle (Document.write_in_worker); the player announces them
from the UI thread once the Task has ended, as the File menu's flows do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from kpstudio.core.video_frames import VideoError, VideoInfo, frame_file_name
from kpstudio.gui.document import Document
from kpstudio.gui.video_player_predictions import VideoPredictions

Job = Callable[[Callable[[int, int], None], Callable[[], bool]], object]


def frames_folder(doc: Document, video: Path) -> Path:
    """Where frames of `video` go in the project: the same folder as File → Add video frames
    and `kpstudio extract-frames` use, so one frame is never added twice under two names."""
    return doc.project.folder / "frames" / video.stem


def frame_image_id(doc: Document, video: Path, index: int) -> int | None:
    """The project's image of frame `index` of `video`, if it was added already."""
    path = doc.project.relative_path(frames_folder(doc, video) / frame_file_name(video, index))
    rows = doc.project.query("SELECT id FROM images WHERE path = ?", (path,))
    return int(rows[0][0]) if rows else None


def check_skeleton(predictor, keypoints: Sequence[str], run_id: str) -> None:
    """ValueError when the model's keypoints are not the project's (a prediction would put
    names on the wrong points)."""
    if tuple(predictor.skeleton.keypoints) != tuple(keypoints):
        raise ValueError(
            f"run {run_id} was trained on the keypoints "
            f"{', '.join(predictor.skeleton.keypoints)}; the project now has "
            f"{', '.join(keypoints)}. Train again to predict."
        )


def load_model_job(model_path: Path, keypoints: Sequence[str], run_id: str) -> Job:
    def job(progress, should_stop):
        from kpstudio.ml.predictor import Predictor

        predictor = Predictor.from_file(model_path)
        check_skeleton(predictor, keypoints, run_id)
        return predictor

    return job


def predict_video_job(
    info: VideoInfo, model_path: Path, predictor, keypoints: Sequence[str], run_id: str,
    start: int, runtime: str, partial: list, before: VideoPredictions | None = None,
) -> Job:  # fmt: skip
    """Predict frames start… of the video (kpstudio.ml.video_predict: decoding in its own
    thread, inference in batches; a model that finds several animals goes through
    kpstudio.ml.video_instances, which links them into tracks). `partial` receives
    [predictor, sink, start] as soon as the model is loaded, so the frames done before a Cancel
    can be kept; `before`: the answers for the frames before `start`, whose last animals a
    resumed several-animal run goes on tracking. The job returns the predictor (loaded here if
    `predictor` is None)."""

    def job(progress, should_stop):
        from kpstudio.ml.predictor import Predictor
        from kpstudio.ml.video_instances import (
            TrackArraySink,
            is_multi_instance,
            predict_video_instances,
            resume_frames,
        )
        from kpstudio.ml.video_predict import ArraySink, predict_video

        model = predictor or Predictor.from_file(model_path)
        check_skeleton(model, keypoints, run_id)
        # Every progress report (one per batch) is a Task's cancel point: Cancel stops after
        # the batch written last, and the sink holds every frame up to it.
        multi = is_multi_instance(model)
        sink = TrackArraySink() if multi else ArraySink()
        partial[:] = [model, sink, start]
        if multi:
            earlier, next_track = [], 0
            if before is not None and start:
                earlier = before.track_rows(start - resume_frames(info.fps, None), start)
                next_track = before.instances
            predict_video_instances(model, info, sink, start=start, progress=progress,
                                    earlier=earlier, next_track=next_track)  # fmt: skip
        else:
            predict_video(model, info, sink, start=start, runtime=runtime, progress=progress)
        return model

    return job


def partial_predictions(partial: list, run_id: str) -> VideoPredictions | None:
    """What a predict_video_job wrote to its sink (all of it, or up to a Cancel)."""
    if len(partial) < 3:
        return None
    model, sink, start = partial
    if hasattr(sink, "rows"):  # several animals, by track
        if sink.upto is None or sink.upto <= start:
            return None
        k = len(model.skeleton)
        return VideoPredictions.from_tracks(run_id, start, sink.upto, k, *sink.rows())
    xy, conf = sink.arrays()
    return VideoPredictions.single(run_id, xy, conf) if len(xy) else None


def add_frame_job(
    doc: Document, video: Path, index: int,
    prediction: tuple[str, list[tuple[np.ndarray, np.ndarray]]] | None, added: list,
) -> Job:  # fmt: skip
    """Write frame `index` as <stem>_<index:06d>.png into the project's frames folder, add it as
    an image and, with `prediction` (run id, [(xy (K, 2), confidence (K,)) per animal, the most
    certain first]), store that as its prediction so it opens ready to correct. `added`
    receives the new image's id."""

    def job(progress, should_stop):
        from kpstudio.core.image_reader import scan_image
        from kpstudio.core.predictions import store_predictions
        from kpstudio.core.video_frames import save_frames

        target = frames_folder(doc, video) / frame_file_name(video, index)
        existed = target.exists()
        saved = save_frames(video, target.parent, [index], should_stop)
        if index not in saved:
            raise VideoError(f"{video}: frame {index} could not be decoded")
        try:
            info = scan_image(saved[index])

            def write(store):
                (image_id,) = store.add_images([(info.path, info.width, info.height,
                                                 info.sha256)])  # fmt: skip
                if prediction is not None:
                    run_id, objects = prediction
                    store_predictions(store, run_id, {image_id: list(objects)})
                return image_id

            added.append(doc.write_in_worker(write))
        except BaseException:
            if not existed:  # nothing half-added: the file goes with the failed write
                saved[index].unlink(missing_ok=True)
            raise
        return added[-1]

    return job
