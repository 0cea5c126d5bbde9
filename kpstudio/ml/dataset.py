"""The training data pipeline: letterboxed images decoded once, keypoint-aware augmentation.

Images go through kpstudio's one image reader (EXIF, 16-bit, CMYK handled) exactly once per
run and are kept letterboxed in memory; tf.data then shuffles, augments in parallel map calls
and batches. Keypoints travel with their image through every geometric change, in model-input
pixels with the pixel-corner convention.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from kpstudio.core.image_reader import read_image
from kpstudio.core.letterbox import Letterbox, letterbox_image
from kpstudio.core.training_set import TrainingSet
from kpstudio.ml.config import Augmentation


@dataclass
class Letterboxed:
    images: np.ndarray  # (N, S, S, 3) uint8
    xy: np.ndarray  # (N, K, 2) float32 input pixels (0 where absent)
    weight: np.ndarray  # (N, K) float32: 1 where the keypoint counts in the loss
    boxes: list[Letterbox]

    def subset(self, indices) -> Letterboxed:
        return Letterboxed(self.images[indices], self.xy[indices], self.weight[indices],
                           [self.boxes[i] for i in indices])  # fmt: skip


def load_letterboxed(
    data: TrainingSet, size: int, progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    known: tuple[Letterboxed, list] | None = None,
) -> Letterboxed:  # fmt: skip
    """Decode and letterbox every image once (the cache every epoch reads from).

    `known`: (an earlier cache, its image paths): canvases of images already there are reused
    (labels changed during a run; their labels are taken fresh), only new images are decoded."""
    old, old_paths = known or (None, [])
    where = {str(p): i for i, p in enumerate(old_paths)}
    n, k = len(data), len(data.skeleton)
    images = np.zeros((n, size, size, 3), dtype=np.uint8)
    xy = np.zeros((n, k, 2), dtype=np.float32)
    boxes = []
    for i, path in enumerate(data.paths):
        if should_stop and should_stop():
            raise InterruptedError("stopped while loading images")
        j = where.get(str(path))
        if j is None:
            images[i], box = letterbox_image(read_image(path), size)
        else:
            images[i], box = old.images[j], old.boxes[j]
        boxes.append(box)
        xy[i] = np.nan_to_num(box.to_input(data.xy[i]))
        if progress:
            progress(i + 1, n)
    # Absent keypoints have no position: mask them out of the loss. Occluded ones stay in.
    weight = (data.visibility > 0).astype(np.float32)
    return Letterboxed(images, xy, weight, boxes)


def training_dataset(
    cache: Letterboxed, batch_size: int, seed: int, augment: Augmentation | None,
    flip_permutation: list[int] | None, crop: int | None = None, centred: float | None = None,
) -> tf.data.Dataset:  # fmt: skip
    """Endless shuffled, augmented batches (the trainer decides how many make an epoch).

    `crop` (with augmentation): batches are crop×crop windows of the augmented letterboxed
    image, placed at random around the labeled keypoints. A fully convolutional model trained
    so sees the animal at the full input resolution for a fraction of the compute.

    Several objects per image (cache.xy (N, M, K, 2), weight (N, M, K)): each time an image is
    drawn, one of its labeled objects is picked at random and is the one to locate. `centred`
    (a share of the crop side): crops are centred on that object's box, jittered by at most
    this much, as a top-down pose model sees them."""
    size = cache.images.shape[1]
    ds = tf.data.Dataset.from_tensor_slices((cache.images, cache.xy, cache.weight))
    ds = ds.shuffle(len(cache.images), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.batch(batch_size, drop_remainder=True)
    if cache.xy.ndim == 4:
        ds = ds.map(_pick_object, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    if augment is not None:
        perm = flip_permutation if (augment.flip and flip_permutation) else None
        # Augmenting whole batches: one transform op per batch costs far less CPU than one per
        # image, and the CPU is what trains the model too.
        fn = _augmenter(size, augment, perm, crop or size, centred)
        ds = ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    else:
        ds = ds.map(lambda im, xy, w: (tf.cast(im, tf.float32), xy, w))
    return ds.prefetch(tf.data.AUTOTUNE)


def _pick_object(images, xy, weight):
    """(B, M, K, 2), (B, M, K) → one labeled object per image, picked at random."""
    labeled = tf.reduce_any(weight > 0, axis=-1)  # (B, M)
    logits = tf.where(labeled, 0.0, -1e9)
    pick = tf.random.categorical(logits, 1)[:, 0]
    return (images, tf.gather(xy, pick, axis=1, batch_dims=1),
            tf.gather(weight, pick, axis=1, batch_dims=1))  # fmt: skip


def _augmenter(size: int, aug: Augmentation, perm: list[int] | None, crop: int,
               centred: float | None = None):  # fmt: skip
    s, c = float(size), float(crop)
    centre = (s - 1.0) / 2.0  # in pixel-index coordinates (centres at integers)
    perm_t = tf.constant(perm, dtype=tf.int32) if perm else None

    def apply(images, xy, weight):
        images = tf.cast(images, tf.float32)
        n = tf.shape(images)[0]
        u = tf.random.uniform([n, 10], -1.0, 1.0)
        if perm_t is not None:
            # Mirror: x → S − x in corner coordinates; left and right keypoints swap names.
            flip = u[:, 7] > 0
            images = tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)
            mirrored = tf.stack([s - xy[..., 0], xy[..., 1]], axis=-1)
            xy = tf.where(flip[:, None, None], tf.gather(mirrored, perm_t, axis=1), xy)
            weight = tf.where(flip[:, None], tf.gather(weight, perm_t, axis=1), weight)
        angle = u[:, 0] * aug.rotation_deg * math.pi / 180.0
        zoom = 1.0 + u[:, 1] * aug.scale
        tx, ty = u[:, 2] * aug.shift * s, u[:, 3] * aug.shift * s
        cos, sin = (tf.cos(angle) * zoom)[:, None], (tf.sin(angle) * zoom)[:, None]
        # Forward map in index coordinates: q' = zoom·R(q − c) + c + t
        qx, qy = xy[..., 0] - 0.5 - centre, xy[..., 1] - 0.5 - centre
        xy = tf.stack([cos * qx - sin * qy + centre + tx[:, None] + 0.5,
                       sin * qx + cos * qy + centre + ty[:, None] + 0.5], axis=-1)  # fmt: skip
        if crop < size or centred is not None:
            # Crop window: around the labeled points' box, jittered as far as the box allows.
            origin = _crop_origin(xy, weight * _inside(xy, s), s, c, u[:, 8:10], centred)
            xy = xy - origin[:, None, :]
            tx, ty = tx - origin[:, 0], ty - origin[:, 1]
        # The image transform wants the inverse map (output pixel → input pixel).
        ic, is_ = tf.cos(angle) / zoom, tf.sin(angle) / zoom
        ox, oy = centre + tx, centre + ty
        zeros = tf.zeros_like(ic)
        transforms = tf.stack(
            [
                ic,
                is_,
                centre - ic * ox - is_ * oy,
                -is_,
                ic,
                centre + is_ * ox - ic * oy,
                zeros,
                zeros,
            ],
            axis=1,
        )
        images = tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=transforms, output_shape=[crop, crop],
            fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT",
        )  # fmt: skip
        weight = weight * _inside(xy, c)  # a point pushed out of view can't count
        # Photometric, per image: contrast around the mean, brightness, gaussian noise.
        mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
        contrast = (1.0 + u[:, 4] * aug.contrast)[:, None, None, None]
        brightness = (u[:, 5] * aug.brightness)[:, None, None, None]
        sigma = ((u[:, 6] + 1.0) * 0.5 * aug.noise)[:, None, None, None]
        images = (images - mean) * contrast + mean + brightness
        images = images + tf.random.normal(tf.shape(images)) * sigma
        images = tf.clip_by_value(images, 0.0, 255.0)
        return images, xy, weight

    return apply


def _inside(xy, side: float):
    return tf.cast(tf.reduce_all((xy >= 0.0) & (xy <= side), axis=-1), tf.float32)


def _crop_origin(xy, weight, size: float, crop: float, u, centred: float | None = None):
    """Top-left corner (B, 2) of a crop×crop window holding the labeled points where it can;
    `centred`: centred on their box, jittered by at most that share of the crop (and never
    clipped to the frame: a top-down crop at the frame's edge is padded the same way)."""
    labeled = weight > 0
    big = 1e9
    lo = tf.reduce_min(tf.where(labeled[..., None], xy, big), axis=1)
    hi = tf.reduce_max(tf.where(labeled[..., None], xy, -big), axis=1)
    has = tf.reduce_any(labeled, axis=1)[:, None]
    centre = tf.where(has, (lo + hi) / 2.0, size / 2.0)
    extent = tf.where(has, hi - lo, 0.0)
    if centred is not None:
        return tf.round(centre - crop / 2.0 + u * centred * crop)
    slack = tf.maximum(0.0, (crop - extent) / 2.0 - 4.0)  # keep 4 px between points and edge
    origin = centre - crop / 2.0 + u * slack
    return tf.clip_by_value(origin, 0.0, size - crop)
