"""Running a model on images: letterbox in, model, coordinates mapped back to the image.

A `Predictor` answers in original image pixels (pixel-corner convention, as the labels are
stored), whatever the image size, so callers never see the model's input space.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kpstudio.core.image_reader import IMAGE_SUFFIXES, ImageReadError, read_image
from kpstudio.core.letterbox import Letterbox, letterbox_image
from kpstudio.core.prediction_files import Prediction
from kpstudio.core.skeleton import Skeleton
from kpstudio.ml.hints import hint_array
from kpstudio.ml.model_file import load_model_file, read_manifest
from kpstudio.ml.models import hinted


class Predictor:
    """A model plus what is needed to feed it: its skeleton and input size."""

    def __init__(self, model: keras.Model, manifest: dict):
        self.model = model
        self.manifest = manifest
        self.skeleton = Skeleton.from_dict(manifest["skeleton"])
        self.input_size = int(manifest["input_size"])
        size = self.input_size
        if tuple(model.input_shape[1:]) != (size, size, 3):
            raise ValueError(f"the model takes {model.input_shape}, not {size}x{size}x3 images")

        # One graph for every batch size: model.predict costs 60-130 ms of set-up per call,
        # far too slow for an overlay that follows the user from image to image.
        @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
        def run(batch):
            return model(batch, training=False)

        self._run = run
        self._run_hinted = None
        twin = hinted(model)
        if twin is not None:
            k = len(self.skeleton)

            @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32),
                                          tf.TensorSpec([None, k, 3], tf.float32)])
            def run_hinted(batch, hints):
                return twin([batch, hints], training=False)

            self._run_hinted = run_hinted

    @property
    def takes_hints(self) -> bool:
        """Whether the model re-answers from keypoints the user placed (predict_with_hints)."""
        return self._run_hinted is not None

    def predict_with_hints(self, image: np.ndarray, given: dict) -> Prediction:
        """Keypoints on one image given some of them ({name: (x, y)} in image pixels, e.g. the
        user's corrections); the others are re-inferred with those as hints. A model without
        hints answers as predict_array does (the given points then replace its own)."""
        canvas, box = self.letterbox(image)
        if self._run_hinted is None:
            pred = self.predict_array(image)
        else:
            hints = hint_array(self.skeleton.keypoints, given, box.to_input)[None]
            out = self._run_hinted(tf.constant(canvas[None], tf.float32),
                                   tf.constant(hints)).numpy()[0]  # fmt: skip
            pred = Prediction(None, box.to_original(out[:, :2]), out[:, 2].astype(np.float64))
        return with_given(pred, self.skeleton.keypoints, given)

    top_down = False  # one object per image

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Predictor:
        """Load a .kpmodel file (see kpstudio.ml.model_file for what is checked): a Predictor,
        or a TopDownPredictor for a model that finds several objects per image."""
        if "top_down" in read_manifest(path):
            from kpstudio.ml.topdown_predictor import TopDownPredictor

            return TopDownPredictor.from_file(path)
        manifest, model = load_model_file(path)
        return cls(model, manifest)

    def predict_instances(self, images: Sequence[np.ndarray],
                          batch_size: int = 32) -> list[list[Prediction]]:  # fmt: skip
        """Every object found on each image, the most certain first (here: the one)."""
        return [[p] for p in self.predict_arrays(images, batch_size)]

    def predict_files_instances(self, paths, batch_size: int = 32, progress=None):
        """(objects per file, unreadable): as predict_files, with every object of each image."""
        preds, bad = self.predict_files(paths, batch_size, progress)
        return [[p] for p in preds], bad

    def run_letterboxed(self, batch: np.ndarray) -> np.ndarray:
        """(B, S, S, 3) letterboxed images → (B, K, 3) raw model output in input pixels."""
        return self._run(tf.convert_to_tensor(batch, tf.float32)).numpy()

    def letterbox(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """The model input for one HxWx3 uint8 RGB image (HxW gray is accepted too)."""
        return letterbox_image(rgb_image(image), self.input_size)

    def predict_array(self, image: np.ndarray) -> Prediction:
        """Keypoints on one image (fast enough to call on every image change)."""
        return self.predict_arrays([image])[0]

    def predict_arrays(
        self, images: Sequence[np.ndarray], batch_size: int = 32
    ) -> list[Prediction]:
        """Keypoints on each image, in order."""
        return [p for chunk in _chunks(list(images), batch_size) for p in self._predict(chunk)]

    def predict_files(
        self,
        paths: Iterable[str | os.PathLike],
        batch_size: int = 32,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[list[Prediction], list[tuple[Path, str]]]:
        """(predictions, unreadable): one unreadable file is reported, never fatal.

        Images are read a batch at a time, so a folder of any size fits in memory.
        `progress(done, total)` is called after each batch.
        """
        paths = [Path(p) for p in paths]
        preds: list[Prediction] = []
        bad: list[tuple[Path, str]] = []
        for start, chunk in enumerate(_chunks(paths, batch_size)):
            images, names = [], []
            for path in chunk:
                try:
                    images.append(read_image(path))
                    names.append(str(path))
                except ImageReadError as exc:
                    bad.append((path, str(exc)))
            preds.extend(self._predict(images, names))
            if progress is not None:
                progress(min((start + 1) * batch_size, len(paths)), len(paths))
        return preds, bad

    def _predict(
        self, images: list[np.ndarray], names: list[str] | None = None
    ) -> list[Prediction]:
        if not images:
            return []
        boxed = [self.letterbox(im) for im in images]
        out = self.run_letterboxed(np.stack([canvas for canvas, _ in boxed]))
        names = names or [None] * len(images)
        return [
            Prediction(name, box.to_original(o[:, :2]), o[:, 2].astype(np.float64))
            for name, (_, box), o in zip(names, boxed, out)
        ]


def rgb_image(image: np.ndarray) -> np.ndarray:
    """`image` as the HxWx3 uint8 RGB a predictor takes (HxW gray is repeated), or ValueError."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or not image.size:
        raise ValueError(
            f"a Predictor takes HxWx3 uint8 RGB images, not {image.dtype} {image.shape}"
        )
    return image


def with_given(pred: Prediction, keypoints, given: dict) -> Prediction:
    """`pred` with the points the user placed ({name: (x, y)}) as the answer there."""
    for k, name in enumerate(keypoints):
        if name in given:
            pred.xy[k], pred.confidence[k] = given[name], 1.0
    return pred


def _chunks(items: list, size: int) -> list[list]:
    if size < 1:
        raise ValueError(f"batch_size must be at least 1, not {size}")
    return [items[i : i + size] for i in range(0, len(items), size)]


def collect_image_files(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Image files named by `inputs`: files as given, folders searched recursively by suffix
    (hidden files and folders skipped), each folder's files sorted; duplicates dropped."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            in_folder = []
            for root, dirs, files in os.walk(item):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                in_folder.extend(
                    Path(root, f)
                    for f in files
                    if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES
                )
            found.extend(sorted(in_folder))
        elif item.exists():
            found.append(item)  # named explicitly: read_image will say if it is no image
        else:
            raise FileNotFoundError(f"{item}: there is no such file or folder")
    return list(dict.fromkeys(found))
