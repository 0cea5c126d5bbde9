"""Training a top-down model: the pose model and the finder learn together, in one step.

train() asks this module for what differs from a single-instance run: the two networks (held
by one Keras model, so weights, checkpoints and the best epoch cover both), the batches (a
centred crop of one object per image for the pose model, the whole frame at the finder's
size for the finder), the loss, the per-epoch val error and the end-to-end evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import keras
import numpy as np
import tensorflow as tf

from kpstudio.core.instance_matching import evaluate_instances
from kpstudio.core.training_set import TrainingSet
from kpstudio.ml import losses
from kpstudio.ml.dataset import Letterboxed, training_dataset
from kpstudio.ml.models import build_model, with_heatmaps
from kpstudio.ml.topdown import (
    CENTRE_JITTER,
    TopDownRunner,
    build_finder,
    crop_at,
    finder_heat_model,
    finder_loss,
    object_centres,
)

# Two objects whose centres are closer than this share of their nearest labeled neighbour's
# distance are one object to the decoder (a second peak on the same animal is dropped).
SEPARATION_SHARE = 0.5


@dataclass
class TopDownSetup:
    frame_size: int  # the letterboxed frame (pose scale)
    finder_size: int
    crop: int
    max_objects: int
    min_separation: float  # canvas pixels

    def manifest(self) -> dict:
        return {"frame_size": self.frame_size, "finder_size": self.finder_size,
                "crop_size": self.crop, "max_objects": self.max_objects,
                "min_separation": round(float(self.min_separation), 3)}  # fmt: skip


class TopDownTraining:
    def __init__(self, data: TrainingSet, cache: Letterboxed, finder_size: int, crop: int):
        if not crop:
            raise ValueError("a top-down model needs a crop size")
        self.finder_size, self.crop = finder_size, crop
        self.replace_data(data, cache)

    def replace_data(self, data: TrainingSet, cache: Letterboxed) -> None:
        """Train on these labels from now on (labels changed while training); the networks
        and their weights stay."""
        finder_size, crop = self.finder_size, self.crop
        self.data, self.cache = data, cache
        xy, vis = data.objects()
        n, m, k, _ = xy.shape
        # Every object in canvas pixels (the letterbox of its image).
        self.xy = np.zeros((n, m, k, 2), dtype=np.float32)
        for i, box in enumerate(cache.boxes):
            self.xy[i] = np.nan_to_num(box.to_input(xy[i]))
        self.weight = (vis > 0).astype(np.float32)
        self.visibility = vis
        centres, valid = object_centres(self.xy, vis)
        size = cache.images.shape[1]
        self.finder_images = np.stack([
            cv2.resize(im, (finder_size, finder_size), interpolation=cv2.INTER_AREA)
            if finder_size != size else im for im in cache.images
        ])  # fmt: skip
        self.finder_centres = centres * (finder_size / size)
        self.valid = valid.astype(np.float32)
        # Up to twice the most objects labeled on one image: low-scored extras cost AP little
        # and let a frame with one more animal than the labels showed be seen.
        most = max(1, 2 * int(valid.sum(1).max()))
        self.setup = TopDownSetup(size, finder_size, crop, most,
                                  _min_separation(centres, valid, self.xy, self.weight))

    def build(self, k: int, params: dict):
        """(pose, finder, combined): the pose model of free input size, the finder, and one
        model holding both (its weights are the run's weights)."""
        pose = build_model("default", k, None, **params)
        finder = build_finder(self.setup.finder_size)
        # Nested, each under its own name: the two graphs' layers share names ("image", ...).
        pose_heat = keras.Model(pose.inputs, with_heatmaps(pose).outputs, name="pose")
        finder_heat = keras.Model(finder.inputs, with_heatmaps(finder).outputs[1], name="finder")
        f = self.setup.finder_size
        crop_in = keras.Input((None, None, 3), name="crop")
        frame_in = keras.Input((f, f, 3), name="frame")
        combined = keras.Model([crop_in, frame_in], [*pose_heat(crop_in), finder_heat(frame_in)],
                               name="topdown")  # fmt: skip
        self.pose, self.finder = pose, finder
        return combined

    def dataset(self, idx, batch: int, seed: int, augment, flip) -> tf.data.Dataset:
        pose = training_dataset(
            Letterboxed(self.cache.images[idx], self.xy[idx], self.weight[idx], []),
            batch, seed, augment, flip, self.setup.crop, centred=CENTRE_JITTER,
        )  # fmt: skip
        # The finder sees whole frames; mirroring moves centres but swaps no names.
        m = self.valid.shape[1]
        finder = training_dataset(
            Letterboxed(self.finder_images[idx], self.finder_centres[idx], self.valid[idx], []),
            batch, seed + 1, augment, list(range(m)),
        )  # fmt: skip
        return tf.data.Dataset.zip((pose, finder)).map(lambda p, f: (*p, *f))

    @staticmethod
    def loss(combined, stride: int):
        def step_loss(images, xy, weight, f_images, centres, valid):
            coords, heat, f_heat = combined([images, f_images], training=True)
            pose = losses.default_loss((coords, heat), xy, weight, stride)
            return pose + finder_loss(f_heat, centres, valid)

        return step_loss

    def validate(self, idx) -> float:
        """Mean px error (original pixels) of the pose model on crops centred on each labeled
        object of `idx`: how well it locates keypoints once an object is found."""
        pred, truth, vis = self._pose_on_true_centres(idx)
        if not len(pred):
            return float("nan")
        err = np.linalg.norm(pred - truth, axis=-1)[vis > 0]
        return float(err.mean()) if err.size else float("nan")

    def _pose_on_true_centres(self, idx):
        centres, valid = object_centres(self.xy[idx], self.visibility[idx])
        crops, origins, rows = [], [], []
        for j, i in enumerate(idx):
            for o in np.nonzero(valid[j])[0]:
                window, origin = crop_at(self.cache.images[i], centres[j, o], self.setup.crop)
                crops.append(window)
                origins.append(origin)
                rows.append((i, o))
        if not crops:
            return np.zeros((0, 0, 2)), np.zeros((0, 0, 2)), np.zeros((0, 0))
        infer = self._pose_infer()
        batch = np.stack(crops).astype(np.float32)
        out = np.concatenate([infer(tf.constant(batch[s : s + 32])).numpy()
                              for s in range(0, len(batch), 32)])  # fmt: skip
        xy, vis = self.data.objects()
        pred = np.stack([self.cache.boxes[i].to_original(o[:, :2] + origin)
                         for o, origin, (i, _) in zip(out, origins, rows)])  # fmt: skip
        truth = np.stack([xy[i, o] for i, o in rows]).astype(np.float64)
        visible = np.stack([vis[i, o] for i, o in rows])
        return pred, np.nan_to_num(truth), visible

    def forget_traces(self) -> None:
        """Trace the pose model anew at the next use (after its heatmap reading changed)."""
        self.__dict__.pop("_infer", None)

    def _pose_infer(self):
        if not hasattr(self, "_infer"):
            pose = self.pose
            self._infer = tf.function(lambda b: pose(b, training=False))
        return self._infer

    def runner(self) -> TopDownRunner:
        finder_heat = finder_heat_model(self.finder)
        s = self.setup
        return TopDownRunner(
            tf.function(lambda b: finder_heat(b, training=False)), self._pose_infer(),
            s.frame_size, s.finder_size, s.crop, s.max_objects, s.min_separation,
        )  # fmt: skip

    def evaluate(self, idx) -> dict:
        """End to end on `idx`: the finder's objects, matched to the labeled ones by OKS."""
        runner = self.runner()
        found = []
        for start in range(0, len(idx), 16):
            chunk = idx[start : start + 16]
            for i, objects in zip(chunk, runner.run(self.cache.images[chunk])):
                box = self.cache.boxes[i]
                found.append([(box.to_original(f.xy), f.confidence, f.score) for f in objects])
        xy, vis = self.data.objects()
        return evaluate_instances(found, xy[idx], vis[idx], list(self.data.skeleton.keypoints),
                                  [int(self.data.image_ids[i]) for i in idx])  # fmt: skip

    def fixed_models(self, k: int, params: dict, combined):
        """(pose at the crop size, finder) with the trained weights, for the model file."""
        pose = build_model("default", k, self.setup.crop, **params)
        pose.set_weights(self.pose.get_weights())
        finder = build_finder(self.setup.finder_size)
        finder.set_weights(self.finder.get_weights())
        return pose, finder


def _min_separation(centres, valid, xy, weight) -> float:
    """How close two objects' centres may be (canvas pixels): SEPARATION_SHARE of the 5th
    percentile of each object's distance to its nearest labeled neighbour; for one object per
    image, SEPARATION_SHARE of the typical object's size (a second peak on one animal)."""
    near = []
    for c, v in zip(centres, valid):
        pts = c[v > 0]
        if len(pts) > 1:
            d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
            np.fill_diagonal(d, np.inf)
            near.extend(d.min(axis=1))
    if near:
        return SEPARATION_SHARE * float(np.percentile(near, 5))
    spans = []
    for obj, w in zip(xy.reshape(-1, *xy.shape[2:]), weight.reshape(-1, weight.shape[-1])):
        pts = obj[w > 0]
        if len(pts) > 1:
            spans.append(float((pts.max(0) - pts.min(0)).max()))
    return SEPARATION_SHARE * float(np.median(spans)) if spans else 8.0
