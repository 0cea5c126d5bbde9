"""Training in a worker thread: a `train` function on a snapshot, progress out, cancel in, and
the run's final record written from here.

The worker talks to the window only through queued signals. Cancel is a threading.Event set
straight from the UI thread: a queued slot would wait behind run(), busy until training ends.
The run's end (finished, stopped, failed) is written in this thread through a worker handle of
the project store (kpstudio.core.runs.record_training) before the thread ends, so it is
recorded even when the window closes meanwhile: closing joins this thread first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from kpstudio.core.runs import publish_model, record_training, set_active_run
from kpstudio.core.training_set import label_follower
from kpstudio.ml.events import BatchEnded  # TensorFlow-free

# Batch-level progress is thinned to this rate: the UI needs a live bar, not 100 events a second.
BATCH_EVENTS_PER_S = 5.0


class TrainingWorker(QObject):
    progressed = Signal(object)  # a kpstudio.ml.events record (plain values: safe to share)
    finished = Signal(object)  # what `train` returned (kpstudio.ml.train.RunResult)
    failed = Signal(str)  # the error, with its traceback
    # (run id, a kpstudio.ml.predictor.Predictor): Assist's better model, loaded in this
    # thread (where TensorFlow already is) so the UI thread only swaps it in.
    published = Signal(str, object)

    def __init__(self, train: Callable | None, snapshot, config, run_id: str, run_dir: Path,
                 project, assist: bool = False):  # fmt: skip
        """`train`: kpstudio.ml.train.train's signature; None loads it in the worker thread
        (TensorFlow takes seconds to import). `project`: the studio's open store, whose worker
        handle this thread writes the run's end through. `assist`: labels made while training
        join the next epoch, and each better model becomes the active one (published)."""
        super().__init__()  # no parent: it moves to its own thread
        self._train, self._snapshot, self._config = train, snapshot, config
        self._run_id, self._run_dir, self._project = run_id, run_dir, project
        self._assist = assist
        self._stop = threading.Event()
        self._last_batch_event = 0.0

    @Slot()
    def run(self) -> None:
        try:
            train = self._train
            if train is None:
                from kpstudio.ml.train import train  # TensorFlow loads here, off the UI thread

            extra = {}
            if self._assist:
                # Its store handle is made in this thread, where refresh() is called.
                extra = {"refresh": label_follower(self._project.worker_handle),
                         "publish": self._publish}  # fmt: skip
            result = record_training(
                self._project.worker_handle, self._run_id,
                lambda: train(self._snapshot, self._config, on_progress=self._report,
                              should_stop=self._stop.is_set, run_dir=self._run_dir, **extra),
            )  # fmt: skip
        except Exception as exc:  # shown to the user with details, never lost in the thread
            import traceback

            self.failed.emit(f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}")
        else:
            self.finished.emit(result)

    def _publish(self, model_path: Path, metrics: dict) -> None:
        from kpstudio.ml.predictor import Predictor  # this thread trains: TensorFlow is here

        predictor = Predictor.from_file(model_path)
        # Trace its graphs here, not on its first use in the UI thread (~0.5 s stall measured).
        blank = np.zeros((32, 32, 3), np.uint8)
        predictor.predict_array(blank)
        if predictor.takes_hints:
            predictor.predict_with_hints(blank, {})
        with self._project.worker_handle() as store:
            publish_model(store, self._run_id, model_path, metrics)
            set_active_run(store, self._run_id)
        self.published.emit(self._run_id, predictor)

    def request_stop(self) -> None:
        self._stop.set()

    def _report(self, event) -> None:
        if isinstance(event, BatchEnded):
            now = time.monotonic()
            if now - self._last_batch_event < 1.0 / BATCH_EVENTS_PER_S:
                return
            self._last_batch_event = now
        self.progressed.emit(event)
