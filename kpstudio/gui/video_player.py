"""The video player (Video → Open video player…): a video with the active model's keypoints.

Play, pause, step and scrub on a timeline; a confidence-over-time strip (click: jump there);
"Predict whole video" as a Task with progress and Cancel; "Add this frame to the project".

Frames decode in their own thread (kpstudio.gui.video_frame_source), so a scrub or a slow seek
never blocks the studio. Until the whole video is predicted, the active model runs on each frame
shown, in that thread (the model itself loads in a Task); once it is, frames draw the stored
answers at once and the strip shows the model's mean confidence on every frame. The player's
Tasks show a progress dialog that is not modal: the studio and the player stay usable while a
video is analysed. It is one window per studio window, reused for the next video, and closes
with the project.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from kpstudio.core.prediction_files import Prediction
from kpstudio.core.project import ProjectError
from kpstudio.core.runs import get_run
from kpstudio.core.video_frames import VIDEO_SUFFIXES, VideoInfo, probe_video
from kpstudio.gui.confidence_strip import ConfidenceStrip
from kpstudio.gui.document import Document
from kpstudio.gui.video_frame_source import VideoFrameSource
from kpstudio.gui.video_frame_view import VideoFrameView
from kpstudio.gui.video_player_jobs import (
    add_frame_job,
    frame_image_id,
    load_model_job,
    partial_predictions,
    predict_video_job,
)
from kpstudio.gui.video_player_predictions import VideoPredictions
from kpstudio.gui.video_transport import VideoTransport

DEFAULT_FPS = 30.0  # for a file that reports no frame rate
PREDICT_TEXT = "Predict whole video"


class VideoPlayer(QWidget):
    frame_shown = Signal(int)  # a frame is on screen, with its predictions drawn

    def __init__(self, parent: QWidget, *, document: Callable[[], Document | None],
                 run_task: Callable, status: Callable[[str, int], None]):  # fmt: skip
        """`document()`: the open Document or None; `run_task(title, job, on_done, on_error,
        parent=…)`: kpstudio.gui.tasks.start_task bound to the studio window (which cancels
        and joins its Tasks on close); `status(message, ms)`: the studio's status line."""
        super().__init__(parent, Qt.WindowType.Window)
        self._document, self._run_task, self._status = document, run_task, status
        self.runtime = "auto"  # kpstudio.ml.batch_runner's choice for whole-video prediction
        self.info: VideoInfo | None = None
        self.source: VideoFrameSource | None = None
        self.current = -1  # the frame on screen
        self.drawn: list[Prediction] = []  # what is drawn over it
        self.stored: VideoPredictions | None = None  # the whole-video prediction, if any
        self.predictor, self.run_id = None, None  # the live model (loaded in a Task)
        self.analysis = None  # the whole-video prediction's Task while it runs
        self._requested = 0  # the frame asked for last (shown once decoded)

        self.view = VideoFrameView()
        self.strip = ConfidenceStrip()
        self.strip.frame_clicked.connect(self.seek)
        self.transport = VideoTransport()
        self.transport.seek_requested.connect(self.seek)
        self.transport.step_requested.connect(self.step)
        self.transport.play_toggled.connect(self.toggle_play)
        self.transport.frame_due.connect(self._on_transport_frame_due)
        self.predict_button = QPushButton(PREDICT_TEXT)
        self.add_button = QPushButton("Add this frame to the project")
        self.model_label = QLabel()
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.predict_button.clicked.connect(self.predict_whole_video)
        self.add_button.clicked.connect(self.add_frame)
        self._layout()
        self._add_keys()
        self.resize(960, 720)

    def _layout(self) -> None:
        actions = QHBoxLayout()
        actions.addWidget(self.predict_button)
        actions.addWidget(self.add_button)
        actions.addWidget(self.model_label, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.strip)
        layout.addWidget(self.transport)
        layout.addLayout(actions)
        layout.addWidget(self.message)

    def _add_keys(self) -> None:
        keys = [
            ("Space", self.toggle_play),
            ("Right", partial(self.step, 1)),
            ("Left", partial(self.step, -1)),
            ("PgDown", partial(self.step_seconds, 1)),
            ("PgUp", partial(self.step_seconds, -1)),
            ("Home", partial(self.seek, 0)),
            ("End", lambda: self.seek(self.frames - 1)),
            ("Insert", self.add_frame),
        ]
        for key, slot in keys:
            action = QAction(self)
            action.setShortcut(QKeySequence(key))
            action.triggered.connect(lambda checked=False, slot=slot: slot())
            self.addAction(action)
        self.add_button.setToolTip("Add the frame shown to the project as an image to label, "
                                   "with its prediction ready to correct (Insert)")  # fmt: skip

    # -- the video ----------------------------------------------------------------------
    @property
    def frames(self) -> int:
        return self.info.frames if self.info is not None else 0

    @property
    def fps(self) -> float:
        fps = self.info.fps if self.info is not None else 0.0
        return fps if math.isfinite(fps) and fps > 0 else DEFAULT_FPS

    def open_video(self, path: str | Path) -> None:
        """Probe the video in a Task, then show its first frame and load the active model."""
        self._close_video()
        path = Path(path)

        def probe(progress, should_stop):
            return probe_video(path)

        self._start(f"Opening {path.name}…", probe, self._on_video_probed)

    @Slot(object)
    def _on_video_probed(self, info: VideoInfo) -> None:
        self._close_video()
        self.info = info
        self.source = VideoFrameSource(info.path, self)
        self.source.frame_ready.connect(self._on_source_frame_ready)
        self.source.failed.connect(self._on_source_failed)
        self.source.past_end.connect(self._on_source_past_end)
        self._set_length(info.frames)
        self.strip.set_confidence(None)
        self.predict_button.setText(PREDICT_TEXT)
        self.setWindowTitle(f"{info.path.name} — {info.frames} frames, {self.fps:g} fps, "
                            f"{info.width}×{info.height}")  # fmt: skip
        self.show()
        self.raise_()
        self.seek(0)
        self._load_model()

    def _close_video(self) -> None:
        self.pause()
        if self.analysis is not None:
            self.analysis.worker.request_stop()  # its answers are for this video only
        if self.source is not None:
            self.source.close()
            self.source.deleteLater()
        self.info = self.source = self.stored = None
        self.current, self.drawn, self._requested = -1, [], 0
        self.view.set_image(None)
        self.view.show_predictions([], None)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self._close_video()
        self.predictor = self.run_id = None  # the next project may have other runs
        super().closeEvent(event)

    # -- moving through the video ---------------------------------------------------------
    def seek(self, index: int) -> None:
        """Show frame `index` (clamped to the video) as soon as it is decoded."""
        if self.source is None:
            return
        index = int(min(max(index, 0), max(0, self.frames - 1)))
        self._request(index)
        self.transport.restart_clock(index)

    def _request(self, index: int) -> None:
        self._requested = index
        stored = self.stored is not None and self.stored.covers(index)
        self.source.request(index, predict=not stored)  # stored answers need no model run

    def step(self, frames: int) -> None:
        self.pause()
        self.seek(self._requested + frames)

    def step_seconds(self, seconds: float) -> None:
        self.step(round(seconds * self.fps))

    def play(self) -> None:
        if self.source is None:
            return
        if self._requested >= self.frames - 1:
            self.seek(0)
        self.transport.start_clock(self._requested)

    def pause(self) -> None:
        self.transport.stop_clock()

    def toggle_play(self) -> None:
        self.pause() if self.transport.playing else self.play()

    @Slot(int)
    def _on_transport_frame_due(self, index: int) -> None:
        if self.source is not None:
            self._request(index)

    @Slot(int, object, object)
    def _on_source_frame_ready(self, index: int, frame, predictions) -> None:
        if self.sender() is not self.source:
            return  # a frame of the video shown before, delivered after it was closed
        self.current = index
        self.view.set_image(frame)
        if self.stored is not None and self.stored.covers(index):
            predictions = self.stored.at(index)
        self.drawn = list(predictions or [])
        doc = self._document()
        self.view.show_predictions(self.drawn, doc.skeleton if doc is not None else None)
        self.transport.show_frame(index)
        self.strip.set_current(index)
        self.frame_shown.emit(index)

    @Slot(int, str)
    def _on_source_failed(self, index: int, message: str) -> None:
        self.pause()
        self._say(message)

    @Slot(int)
    def _on_source_past_end(self, index: int) -> None:
        if self.info is None or not 0 < index < self.info.frames:
            self.pause()
            self._say(f"{self.source.path}: frame {index} could not be decoded")
            return
        self._set_length(index)  # the container promised more frames than it holds
        self.seek(index - 1)

    def _set_length(self, frames: int) -> None:
        """The video has `frames` frames (its header may have said otherwise)."""
        info = self.info
        self.info = VideoInfo(info.path, frames, info.fps, info.width, info.height)
        self.transport.set_video(frames, self.fps)
        self.strip.set_length(frames)

    # -- the model ------------------------------------------------------------------------
    def _active_run(self):
        doc = self._document()
        if doc is None:
            self.model_label.setText("No project open: frames play without predictions.")
            return None
        try:
            return get_run(doc.project)
        except ProjectError:
            self.model_label.setText("No trained run yet: frames play without predictions.")
            return None

    def _load_model(self) -> None:
        run = self._active_run()
        if run is None:
            return
        if self.predictor is not None and self.run_id == run.id:
            self._use_model(self.predictor)
            return
        self.model_label.setText(f"loading the model of run {run.id}…")
        job = load_model_job(run.model_file(self._document().project),
                             self._document().skeleton.keypoints, run.id)  # fmt: skip
        self._start(f"Loading the model of run {run.id}…", job,
                    partial(self._on_model_loaded, run.id), self._on_model_failed)  # fmt: skip

    def _on_model_loaded(self, run_id: str, predictor) -> None:
        self.predictor, self.run_id = predictor, run_id
        self._use_model(predictor)

    def _on_model_failed(self, message: str) -> None:
        self.model_label.setText("The model could not be loaded.")
        self._say(message)

    def _use_model(self, predictor) -> None:
        if self.source is None:
            return
        self.source.set_predictor(predictor)
        self.model_label.setText(f"predictions of run {self.run_id}")
        self.seek(self._requested)  # the frame shown again, now with its prediction

    def predict_whole_video(self) -> None:
        """Predict every frame (or the frames after a cancelled run's last) in a Task."""
        if self.info is None or self.analysis is not None:
            return
        run = self._active_run()
        if run is None:
            QMessageBox.information(self, PREDICT_TEXT, self.model_label.text())
            return
        doc, info = self._document(), self.info
        stored = self.stored
        resume = stored is not None and stored.run_id == run.id and stored.frames < info.frames
        start = stored.frames if resume else 0
        cached = self.predictor if self.run_id == run.id else None
        got: list = []
        model_file, keypoints = run.model_file(doc.project), doc.skeleton.keypoints
        job = predict_video_job(info, model_file, cached, keypoints, run.id, start,
                                self.runtime, got, stored if resume else None)  # fmt: skip
        if start:
            title = f"Predicting {info.path.name} from frame {start}…"
        else:
            title = f"Predicting the {info.frames} frames of {info.path.name}…"
        self.analysis = self._start(title, job, partial(self._on_model_loaded, run.id))
        self.analysis.ended.connect(partial(self._on_analysis_ended, info, run.id, start, got))
        self.predict_button.setEnabled(False)
        self.predict_button.setText("Predicting…")

    def _on_analysis_ended(self, info: VideoInfo, run_id: str, start: int, got: list) -> None:
        """After success, Cancel or an error: keep every frame predicted."""
        self.analysis = None
        self.predict_button.setEnabled(True)
        self.predict_button.setText(PREDICT_TEXT)
        new = partial_predictions(got, run_id)
        if self.info is not info or new is None:
            return  # another video is open now, or nothing was predicted
        self.stored = self.stored.extended(new) if start else new
        done = self.stored.frames
        if done > self.frames:  # the header said fewer frames than the video holds
            self._set_length(done)
        self.strip.set_confidence(self.stored.mean_confidence())
        if done < self.frames:
            self.predict_button.setText(f"Go on predicting (from frame {done})")
            self._say(f"predicted frames 0–{done - 1} of {info.path.name} with run {run_id}; "
                      f"stopped before frame {done}")  # fmt: skip
        else:
            self._say(f"predicted all {done} frames of {info.path.name} with run {run_id}")
        self.seek(self._requested)  # redraw the frame shown from the stored answers

    # -- adding frames ----------------------------------------------------------------------
    def add_frame(self) -> None:
        """Add the frame shown to the project, with its prediction stored when there is one."""
        doc, info, index = self._document(), self.info, self.current
        if doc is None or info is None or index < 0:
            return
        existing = frame_image_id(doc, info.path, index)
        if existing is not None:
            self._say(f"frame {index} of {info.path.name} is already in the project "
                      f"(image {existing})")  # fmt: skip
            return
        prediction = self._prediction_to_store(index)
        added: list[int] = []
        task = self._start(f"Adding frame {index}…", add_frame_job(doc, info.path, index,
                           prediction, added), lambda _: None)  # fmt: skip
        task.ended.connect(partial(self._on_frame_added, doc, info, index, prediction, added))

    def _prediction_to_store(self, index: int):
        """(run id, [(xy, confidence) of each animal drawn on frame `index`, the most certain
        first])."""
        if self.stored is not None and self.stored.covers(index):
            found, run_id = self.stored.at(index), self.stored.run_id
        elif index == self.current and self.run_id is not None:
            found, run_id = self.drawn, self.run_id
        else:
            return None
        if not found:
            return None
        ranked = sorted(found, key=lambda p: (-_score(p), p.instance))
        return run_id, [(p.xy, p.confidence) for p in ranked]

    def _on_frame_added(self, doc: Document, info, index, prediction, added: list) -> None:
        if not added or self._document() is not doc:
            return
        doc.worker_added_images()
        if prediction is not None:
            doc.worker_stored_predictions(prediction[0], added)
        what = f" with run {prediction[0]}'s prediction to correct" if prediction else ""
        self._say(f"added frame {index} of {info.path.name} to the project{what}")

    # -- helpers ----------------------------------------------------------------------------
    def _start(self, title: str, job, on_done, on_error=None):
        task = self._run_task(title, job, on_done, on_error or self._on_task_failed, parent=self)
        # Not modal: the studio and the player stay usable while the job runs.
        task.dialog.setWindowModality(Qt.WindowModality.NonModal)
        return task

    def _on_task_failed(self, message: str) -> None:
        self._say(message)
        QMessageBox.warning(self, "Video player", message)

    def _say(self, message: str) -> None:
        self.message.setText(message)
        self._status(message, 8000)


def open_video_player(window, path: str | Path | None = None) -> VideoPlayer | None:
    """Video → Open video player…: ask for a video (unless `path`) and show it in the studio
    window's player (made on first use)."""
    from kpstudio.gui.file_flows import last_folder, remember_folder
    from kpstudio.gui.tasks import start_task

    if window.doc is None:
        QMessageBox.information(window, "Video player", "Open or create a project first.")
        return None
    if path is None:
        patterns = " ".join(f"*{s}" for s in VIDEO_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(window, "Open video", last_folder(
            window.settings, "video"), f"Videos ({patterns});;All (*)")  # fmt: skip
        if not path:
            return None
        remember_folder(window.settings, "video", Path(path))
    player = window.findChild(VideoPlayer)
    if player is None:
        player = VideoPlayer(window, document=lambda: window.doc,
                             run_task=partial(start_task, window),
                             status=window.show_status)  # fmt: skip
    player.open_video(path)
    return player


def _score(prediction) -> float:
    """How sure the model is an animal is there (a single-animal model's answer: 1)."""
    score = float(prediction.score)
    return score if math.isfinite(score) else 1.0
