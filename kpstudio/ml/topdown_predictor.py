"""Running a top-down model on images: the finder proposes objects, the pose model locates the
keypoints of each (kpstudio.ml.topdown), answers in original image pixels.

Same interface as Predictor: `predict_instances` / `predict_files_instances` return every
object found, the most certain first; `predict_array(s)` / `predict_files` return the most
certain object of each image (instance 0), for callers that show one object.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from kpstudio.core.image_reader import ImageReadError, read_image
from kpstudio.core.letterbox import letterbox_image
from kpstudio.core.prediction_files import Prediction
from kpstudio.core.skeleton import Skeleton
from kpstudio.ml.model_file import load_top_down_file
from kpstudio.ml.predictor import rgb_image, with_given
from kpstudio.ml.topdown import TopDownRunner, finder_heat_model


class TopDownPredictor:
    top_down = True
    takes_hints = False

    def __init__(self, pose, finder, manifest: dict):
        self.manifest = manifest
        self.skeleton = Skeleton.from_dict(manifest["skeleton"])
        td = manifest["top_down"]
        self.input_size = int(td["frame_size"])  # the frame is letterboxed to this side
        self.crop_size = int(td["crop_size"])
        heat = finder_heat_model(finder)
        self.pose_model, self.finder_heat = pose, heat  # the networks, as exports write them
        f, c = int(td["finder_size"]), self.crop_size
        finder_fn = tf.function(lambda b: heat(b, training=False),
                                input_signature=[tf.TensorSpec([None, f, f, 3], tf.float32)])
        pose_fn = tf.function(lambda b: pose(b, training=False),
                              input_signature=[tf.TensorSpec([None, c, c, 3], tf.float32)])
        self.runner = TopDownRunner(finder_fn, pose_fn, self.input_size, f, c,
                                    int(td["max_objects"]), float(td["min_separation"]))

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> TopDownPredictor:
        manifest, pose, finder = load_top_down_file(path)
        return cls(pose, finder, manifest)

    def letterbox(self, image: np.ndarray):
        return letterbox_image(rgb_image(image), self.input_size)

    def predict_instances(
        self, images: Sequence[np.ndarray], batch_size: int = 16,
        names: Sequence[str | None] | None = None,
    ) -> list[list[Prediction]]:  # fmt: skip
        names = list(names) if names is not None else [None] * len(images)
        out: list[list[Prediction]] = []
        for start in range(0, len(images), batch_size):
            boxed = [self.letterbox(im) for im in images[start : start + batch_size]]
            found = self.runner.run(np.stack([canvas for canvas, _ in boxed]))
            for (_, box), objects, name in zip(boxed, found, names[start : start + batch_size]):
                out.append([Prediction(name, box.to_original(f.xy), f.confidence, i, f.score)
                            for i, f in enumerate(objects)])  # fmt: skip
        return out

    def predict_files_instances(self, paths, batch_size: int = 16, progress=None):
        paths = [Path(p) for p in paths]
        out, bad = [], []
        for start in range(0, len(paths), batch_size):
            images, names = [], []
            for path in paths[start : start + batch_size]:
                try:
                    images.append(read_image(path))
                    names.append(str(path))
                except ImageReadError as exc:
                    bad.append((path, str(exc)))
            out.extend(self.predict_instances(images, batch_size, names))
            if progress is not None:
                progress(min(start + batch_size, len(paths)), len(paths))
        return out, bad

    def predict_arrays(self, images: Sequence[np.ndarray], batch_size: int = 16):
        return [self._first(objs, None) for objs in self.predict_instances(images, batch_size)]

    def predict_array(self, image: np.ndarray) -> Prediction:
        return self.predict_arrays([image])[0]

    def predict_files(self, paths, batch_size: int = 16, progress=None):
        found, bad = self.predict_files_instances(paths, batch_size, progress)
        readable = [p for p in map(Path, paths) if p not in {b for b, _ in bad}]
        return [self._first(objs, str(p)) for objs, p in zip(found, readable)], bad

    def predict_with_hints(self, image: np.ndarray, given: dict) -> Prediction:
        """No hints for top-down models yet: the most certain object, the given points in."""
        return with_given(self.predict_array(image), self.skeleton.keypoints, given)

    def _first(self, objects: list[Prediction], name) -> Prediction:
        """The most certain object, or one with no keypoints found (NaN) when there is none."""
        if objects:
            return objects[0]
        k = len(self.skeleton)
        return Prediction(name, np.full((k, 2), np.nan), np.zeros(k), 0, 0.0)
