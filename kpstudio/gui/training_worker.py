"""Training in a worker thread: kpstudio.ml.train on a snapshot, progress out, cancel in.

The worker talks to the window only through queued signals. Cancel is a threading.Event set
straight from the UI thread: a queued slot would wait behind run(), busy until training ends.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

# Batch-level progress is thinned to this rate: the UI needs a live bar, not 100 events a second.
BATCH_EVENTS_PER_S = 5.0


class TrainingWorker(QObject):
    progressed = Signal(dict)  # plain floats, lists and strings only
    finished = Signal(object)  # kpstudio.ml.train.RunResult
    failed = Signal(str)

    def __init__(self, snapshot, config, run_dir: Path):
        super().__init__()  # no parent: it moves to its own thread
        self._snapshot, self._config, self._run_dir = snapshot, config, run_dir
        self._stop = threading.Event()
        self._last_batch_event = 0.0

    @Slot()
    def run(self) -> None:
        try:
            from kpstudio.ml.train import train  # TensorFlow loads here, off the UI thread

            result = train(self._snapshot, self._config, on_progress=self._report,
                           should_stop=self._stop.is_set, run_dir=self._run_dir)  # fmt: skip
        except Exception as exc:  # shown to the user with details, never lost in the thread
            import traceback

            self.failed.emit(f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}")
        else:
            self.finished.emit(result)

    def request_stop(self) -> None:
        self._stop.set()

    def _report(self, event: dict) -> None:
        if event.get("phase") == "training":
            now = time.monotonic()
            if now - self._last_batch_event < 1.0 / BATCH_EVENTS_PER_S:
                return
            self._last_batch_event = now
        self.progressed.emit(_plain(event))


def _plain(event: dict) -> dict:
    """Only what crosses threads safely and cheaply (no numpy, no big nested reports)."""
    out = {}
    for key, value in event.items():
        if key == "metrics":
            continue
        if isinstance(value, int | float | str | type(None)):
            out[key] = value
        elif key == "preview" and isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if k in ("image", "xy", "confidence")}
        elif hasattr(value, "item"):
            out[key] = value.item()
    return out
