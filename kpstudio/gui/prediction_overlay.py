"""The one owner of the model's prediction drawn over the current image.

Review (predict this image, stored predictions, predict-all finishing) and the training
preview all show predictions through `show_prediction`; nothing else draws them on the canvas.
It remembers what is shown, so Accept knows which prediction the user sees.
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
        self.shown: tuple[int, Prediction] | None = None  # (image id, what is drawn)

    def show_prediction(self, image_id: int, prediction: Prediction, what: str = "") -> bool:
        """Draw `prediction` (xy (K, 2) in image pixels, NaN where missing; confidence (K,))
        if `image_id` is the image shown now; returns whether it was drawn. `what` names it in
        the status line ("prediction of run …"); empty: no message (a training preview)."""
        if image_id != self._current_image():
            return False
        markers, confs = [], []
        for name, (x, y), c in zip(self._keypoints(), prediction.xy, prediction.confidence):
            if np.isfinite(x) and np.isfinite(y):
                markers.append(Marker(0, name, float(x), float(y), 2))
                confs.append(float(c))
        self.shown = (image_id, prediction)
        self._canvas.set_predictions(markers, confs)
        if what and confs and self._status is not None:
            self._status(f"{what}: confidence {min(confs):.2f}–{max(confs):.2f}; "
                         "Ctrl+Return accepts it", 8000)  # fmt: skip
        return True

    def clear(self) -> None:
        """Nothing predicted is drawn (another image is shown, or the prediction was taken)."""
        if self.shown is not None or self._canvas.has_predictions():
            self.shown = None
            self._canvas.set_predictions([])
