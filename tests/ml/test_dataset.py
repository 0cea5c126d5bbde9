"""The training data path: letterbox geometry, augmentation moving keypoints with the pixels,
flips swapping left and right, and the model contract."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")

from kpstudio.core.letterbox import letterbox_for, letterbox_image  # noqa: E402
from kpstudio.ml.dataset import Augmentation, Letterboxed, training_dataset  # noqa: E402
from kpstudio.ml.models import SoftArgmax, build_model  # noqa: E402


def test_letterbox_round_trip_and_pixel_alignment():
    box = letterbox_for(640, 480, 256)
    assert (box.scale_x, box.pad_x, box.pad_y) == (0.4, 0, 32)
    pts = np.array([[0.0, 0.0], [640.0, 480.0], [123.4, 56.7]])
    np.testing.assert_allclose(box.to_original(box.to_input(pts)), pts, atol=1e-9)
    # A bright pixel at index (30, 20) of a 100x60 image: its centre is (30.5, 20.5) in our
    # convention and must land on the letterboxed bright spot.
    image = np.zeros((60, 100, 3), np.uint8)
    image[20, 30] = 255
    canvas, box = letterbox_image(image, 200)  # upscaled ×2
    ys, xs = np.nonzero(canvas[..., 0])
    weights = canvas[ys, xs, 0].astype(float)
    centre = np.array(
        [np.average(xs, weights=weights) + 0.5, np.average(ys, weights=weights) + 0.5]
    )
    np.testing.assert_allclose(centre, box.to_input([30.5, 20.5]), atol=0.3)


def _blob_image(size, centres):
    image = np.zeros((size, size, 3), np.uint8)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5  # pixel centres in corner convention
    for c, (x, y) in enumerate(centres):
        image[..., c] = np.clip(255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8.0), 0, 255)
    return image


def _centroid(channel):
    yy, xx = np.mgrid[0 : channel.shape[0], 0 : channel.shape[1]] + 0.5
    w = channel.astype(float)
    return np.array([(xx * w).sum() / w.sum(), (yy * w).sum() / w.sum()])


@pytest.mark.parametrize("flip", [False, True])
def test_augmentation_moves_keypoints_with_the_pixels(flip):
    size, n = 96, 32
    centres = [(30.0, 40.0), (60.0, 50.0)]  # keypoint 0 "left" in red, 1 "right" in green
    cache = Letterboxed(
        images=np.stack([_blob_image(size, centres)] * n),
        xy=np.array([centres] * n, np.float32),
        weight=np.ones((n, 2), np.float32),
        boxes=[letterbox_for(size, size, size)] * n,
    )
    aug = Augmentation(rotation_deg=30, scale=0.2, shift=0.1, flip=flip, brightness=0,
                       contrast=0, noise=0)  # fmt: skip
    ds = training_dataset(cache, n, seed=1, augment=aug, flip_permutation=[1, 0] if flip else None)
    images, xy, weight = (t.numpy() for t in next(iter(ds)))
    mirrored, checked = [], 0
    for i in range(n):
        red, green = _centroid(images[i, ..., 0]), _centroid(images[i, ..., 1])
        # Turned by at most 30° and shifted, red stays left of green unless mirrored.
        mirrored.append(red[0] > green[0])
        if mirrored[-1]:  # keypoint 0 ("left") is now the mirrored right one: the green blob
            red, green = green, red
        if weight[i].all():
            checked += 1
            np.testing.assert_allclose(xy[i, 0], red, atol=0.35)
            np.testing.assert_allclose(xy[i, 1], green, atol=0.35)
    assert checked >= n // 2
    if flip:  # each image is mirrored with probability 1/2: both kinds are in the batch
        assert 0 < sum(mirrored) < n
    else:
        assert not any(mirrored)


def test_soft_argmax_reads_cell_centres_and_confidence():
    logits = np.full((1, 8, 8, 2), -50.0, np.float32)
    logits[0, 2, 5, 0] = 50.0  # a sharp peak at row 2, column 5
    logits[0, :, :, 1] = 0.0  # a flat map: centre of the image, low confidence
    out = SoftArgmax(stride=4)(tf.constant(logits)).numpy()[0]
    np.testing.assert_allclose(out[0], [(5 + 0.5) * 4, (2 + 0.5) * 4, 1.0], atol=1e-4)
    np.testing.assert_allclose(out[1, :2], [16.0, 16.0], atol=1e-4)
    assert out[1, 2] < 0.3


@pytest.mark.parametrize("arch, size", [("seed", 32), ("default", 64)])
def test_models_honour_the_contract(arch, size):
    params = {"width": 8, "decoder": 16} if arch == "default" else {}
    model = build_model(arch, 5, size, **params)
    out = model(np.zeros((2, size, size, 3), np.float32)).numpy()
    assert out.shape == (2, 5, 3)
    assert np.all((out[..., 2] >= 0) & (out[..., 2] <= 1))
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("resnet9000", 5, size)
