"""The one owner of the model's prediction drawn over the current image.

Review (predict this image, stored predictions, predict-all finishing) and the training
preview all show predictions through `show_prediction`; nothing else draws them on the canvas.
It remembers what is shown, so Accept knows which prediction the user sees. A model that finds
several objects per image shows them all (`show_objects`), each drawn as its own instance.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject

from kpstudio.core.prediction_files import Prediction
from kpstudio.gui.canvas import ImageCanvas, Marker


class PredictionOverlay(QObject):
    def __init__(self, canvas: ImageCanvas, keypoints: Callable[[], tuple[str, ...]],
                 current_image: Callable[[], int | None],
                 status: Callable[[str, int], None] | None = None,
                 parent: QObject | None = None):  # fmt: skip
        """`keypoints()`: the skeleton's names now; `current_image()`: the image shown;
        `status(message, ms)`: where a one-line summary goes."""
        super().__init__(parent)
        self._canvas, self._keypoints = canvas, keypoints
        self._current_image, self._status = current_image, status
        self.shown: tuple[int, Prediction] | None = None  # (image id, the first object drawn)
        self.shown_objects: list[Prediction] = []  # every object drawn, instance 0 first

    def show_prediction(self, image_id: int, prediction: Prediction, what: str = "") -> bool:
        """Draw `prediction` (xy (K, 2) in image pixels, NaN where missing; confidence (K,))
        if `image_id` is the image shown now; returns whether it was drawn. `what` names it in
        the status line ("prediction of run …"); empty: no message (a training preview)."""
        return self.show_objects(image_id, [prediction], what)

    def show_objects(self, image_id: int, objects: list[Prediction], what: str = "") -> bool:
        """Draw every object of a prediction (the most certain first) on the image shown."""
        if image_id != self._current_image():
            return False
        markers, confs = [], []
        for instance, prediction in enumerate(objects):
            for name, (x, y), c in zip(self._keypoints(), prediction.xy, prediction.confidence):
                if np.isfinite(x) and np.isfinite(y):
                    markers.append(Marker(instance, name, float(x), float(y), 2))
                    confs.append(float(c))
        if not objects:
            self.clear()
            return True
        self.shown, self.shown_objects = (image_id, objects[0]), list(objects)
        self._canvas.set_predictions(markers, confs)
        if what and confs and self._status is not None:
            several = f"{len(objects)} objects, " if len(objects) > 1 else ""
            self._status(f"{what}: {several}confidence {min(confs):.2f}–{max(confs):.2f}; "
                         "Ctrl+Return accepts it", 8000)  # fmt: skip
        return True

    def clear(self) -> None:
        """Nothing predicted is drawn (another image is shown, or the prediction was taken)."""
        if self.shown is not None or self._canvas.has_predictions():
            self.shown, self.shown_objects = None, []
            self._canvas.set_predictions([])
