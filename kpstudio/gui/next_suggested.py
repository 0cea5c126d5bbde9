"""Go → Next suggested image: the unlabeled image that should teach the model most.

The choice (kpstudio.core.suggest: diversity, and the active model's uncertainty when there is
one) runs as a Task: reading images for their features, loading the model and predicting
happen in a worker thread, never in the UI thread. One run chooses a batch of `BATCH` images;
the next presses walk through it (skipping any labeled meanwhile) before choosing again, and a
new active model starts a fresh batch.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Slot

from kpstudio.core.image_features import cache_path, image_features
from kpstudio.core.project import ProjectError
from kpstudio.core.runs import get_run
from kpstudio.core.suggest import CANDIDATE_STATUSES, Inputs, Suggestion, choose

BATCH = 10


class NextSuggested(QObject):
    """Given `document()`, `current_image()`, `show_image(id)`, `run_task(title, job, on_done)`
    (kpstudio.gui.tasks.start_task bound to the window) and `status(text, ms)`."""

    def __init__(self, *, document: Callable, current_image: Callable, show_image: Callable,
                 run_task: Callable, status: Callable[[str, int], None],
                 parent: QObject | None = None):  # fmt: skip
        super().__init__(parent)
        self._document, self._current_image, self._show_image = document, current_image, show_image
        self._run_task, self._status = run_task, status
        self.queue: list[Suggestion] = []
        self._queue_run: str | None = None  # the active run the queue was chosen with
        self._doc = None
        self.busy = False
        self.rule = ""

    def go(self) -> None:
        """Show the next suggested image (choosing a new batch first if none is left)."""
        doc = self._document()
        if doc is None or self.busy:
            return
        run_id = _active_run(doc)
        if doc is not self._doc or run_id != self._queue_run:
            self.queue, self._doc = [], doc
        while self.queue:
            nxt = self.queue.pop(0)
            if nxt.image_id != self._current_image() and _still_candidate(doc, nxt.image_id):
                self._show(nxt)
                return
        self._choose(doc, run_id)

    def _choose(self, doc, run_id: str | None) -> None:
        inputs = Inputs.read(doc.project)  # in the UI thread: the connection is its own
        if not inputs.candidates.any():
            self._status("Every image is labeled: nothing to suggest.", 5000)
            return
        model = None
        if run_id is not None:
            model = get_run(doc.project, run_id).model_file(doc.project)
        keypoints = tuple(doc.skeleton.keypoints) if doc.skeleton else ()

        def job(progress, should_stop):
            features = image_features(inputs.ids, inputs.paths,
                                      cache_path(inputs.project_folder), progress,
                                      should_stop)  # fmt: skip
            scorer, rule = None, "diversity alone: no trained model yet"
            if model is not None and model.exists():
                from kpstudio.ml.uncertainty import model_scorer

                try:
                    scorer = model_scorer(model, keypoints, progress, should_stop)
                    rule = f"uncertainty of run {run_id}, weighted by diversity"
                except ValueError as exc:
                    rule = f"diversity alone: {exc}"
            return rule, choose(inputs, BATCH, features, scorer)

        def done(result):
            self.busy = False
            self.rule, picks = result
            self.queue, self._queue_run, self._doc = list(picks), run_id, doc
            if self._document() is doc and self.queue:
                self._show(self.queue.pop(0))

        self.busy = True
        task = self._run_task("Choosing the next images to label…", job, done)
        task.ended.connect(self._on_task_ended)

    @Slot()
    def _on_task_ended(self) -> None:
        self.busy = False  # after done, an error or a Cancel

    def _show(self, pick: Suggestion) -> None:
        self._show_image(pick.image_id)
        why = (f"uncertainty {pick.uncertainty:.2f}" if pick.uncertainty is not None
               else "far from the labeled images")  # fmt: skip
        self._status(f"Suggested: {pick.path} ({why}; {self.rule})", 8000)


def _active_run(doc) -> str | None:
    try:
        return get_run(doc.project).id
    except ProjectError:
        return None


def _still_candidate(doc, image_id: int) -> bool:
    try:
        return doc.image(image_id).status in CANDIDATE_STATUSES
    except (ProjectError, KeyError, ValueError):
        return False
