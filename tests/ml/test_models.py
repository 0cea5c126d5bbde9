"""The default model's heatmap strides, its SoftArgmax and its heatmap loss, checked against the
full-map formulas they replace (those cost a step half its speed at 68 keypoints)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")

import keras  # noqa: E402

from kpstudio.ml.losses import HEATMAP_SIGMA, heatmap_kl  # noqa: E402
from kpstudio.ml.models import HEATMAP_LAYER, PEAK_RADIUS, SoftArgmax, build_model  # noqa: E402


def _centres(n, stride):
    return (np.arange(n) + 0.5) * stride


def _full_map_soft_argmax(logits, stride, window=1.5):
    b, h, w, k = logits.shape
    flat = logits.transpose(0, 3, 1, 2).reshape(b, k, h * w)
    prob = np.exp(flat - flat.max(-1, keepdims=True))
    prob = (prob / prob.sum(-1, keepdims=True)).reshape(b, k, h, w)
    xs, ys = _centres(w, stride), _centres(h, stride)
    x = (prob.sum(2) * xs).sum(-1)
    y = (prob.sum(3) * ys).sum(-1)
    dx = (xs[None, None, None, :] - x[..., None, None]) / stride
    dy = (ys[None, None, :, None] - y[..., None, None]) / stride
    conf = (prob * np.exp(-(dx**2 + dy**2) / (2 * window**2))).sum((2, 3))
    return np.stack([x, y, conf], -1)


def _full_map_kl(heat, xy, weight, stride):
    b, h, w, k = heat.shape
    flat = heat.transpose(0, 3, 1, 2).reshape(b, k, h * w).astype(np.float64)
    log_p = flat - flat.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    xs, ys = _centres(w, stride), _centres(h, stride)
    dx = (xs[None, None, None, :] - xy[:, :, 0, None, None]) / stride
    dy = (ys[None, None, :, None] - xy[:, :, 1, None, None]) / stride
    g = np.exp(-(dx**2 + dy**2) / (2 * HEATMAP_SIGMA**2)).reshape(b, k, h * w)
    t = g / g.sum(-1, keepdims=True)
    kl = (t * (np.log(np.maximum(t, 1e-300)) - log_p)).sum(-1)
    return (kl * weight).sum(-1)


@pytest.mark.parametrize("stride,k", [(4, 3), (2, 68)])
def test_soft_argmax_and_heatmap_loss_match_the_full_map_formulas(stride, k):
    rng = np.random.default_rng(k)
    h, w = 12, 16
    logits = rng.normal(0, 3, (2, h, w, k)).astype(np.float32)
    xy = np.stack([rng.uniform(0, w * stride, (2, k)), rng.uniform(0, h * stride, (2, k))], -1)
    weight = (rng.uniform(size=(2, k)) > 0.3).astype(np.float32)
    out = SoftArgmax(stride=stride)(tf.constant(logits), training=True).numpy()  # whole map
    np.testing.assert_allclose(out, _full_map_soft_argmax(logits, stride), rtol=1e-4, atol=1e-3)
    kl = heatmap_kl(tf.constant(logits), tf.constant(xy, tf.float32), tf.constant(weight), stride)
    np.testing.assert_allclose(kl.numpy(), _full_map_kl(logits, xy, weight, stride), rtol=1e-4)



def test_read_around_the_peak_a_split_map_answers_at_its_higher_spot_not_between():
    """Two bright spots (a paw and its look-alike): training reads the whole map's mean, which
    lies between them; a model reading around the peak answers at the higher one at inference.
    The confidence still says the map was split."""
    stride, h, w = 4, 16, 24
    logits = np.full((1, h, w, 1), -20.0, np.float32)
    logits[0, 4, 3, 0], logits[0, 11, 19, 0] = 8.0, 7.5  # the first a little higher
    layer = SoftArgmax(stride=stride, peak=PEAK_RADIUS)
    whole = layer(tf.constant(logits), training=True).numpy()[0, 0]
    local = layer(tf.constant(logits), training=False).numpy()[0, 0]
    first = np.array([(3 + 0.5) * stride, (4 + 0.5) * stride])
    np.testing.assert_allclose(local[:2], first, atol=1e-3)
    assert np.linalg.norm(whole[:2] - first) > 20  # pulled towards the other spot
    share = 1 / (1 + np.exp(-0.5))  # the higher spot's share of the probability
    assert local[2] == pytest.approx(share, abs=0.02) and local[2] < 0.7
    assert layer(tf.constant(logits)).numpy()[0, 0] == pytest.approx(local)  # unset: inference
    whole_map = SoftArgmax(stride=stride)  # peak 0: the whole map, also at inference
    np.testing.assert_allclose(whole_map(tf.constant(logits)).numpy()[0, 0], whole, atol=1e-5)


def test_a_map_split_between_look_alikes_answers_where_its_relation_says():
    """Keypoint 1 (the far paw in the side view) lights up at two spots, the wrong one a little
    brighter; keypoint 0 (the same paw in the mirror) is clear. The relation "1's x follows 0's
    x" makes the second reading answer at the spot above 0, with the confidence of the split
    map. Training and a layer without relations read as before."""
    stride, h, w = 4, 16, 24
    logits = np.full((1, h, w, 2), -20.0, np.float32)
    logits[0, 12, 18, 0] = 9.0  # the mirror view: clear, at column 18
    logits[0, 3, 4, 1], logits[0, 4, 18, 1] = 8.0, 7.5  # the side view: the look-alike brighter
    relation = [1, 0, 0, 0, 1.0, 0.0, 2.0 * stride]  # 1's x = 0's x, ± 2 cells
    guided = SoftArgmax(stride=stride, relations=[relation])
    out = guided(tf.constant(logits)).numpy()[0]
    np.testing.assert_allclose(out[1, :2], [(18 + 0.5) * stride, (4 + 0.5) * stride], atol=0.05)
    np.testing.assert_allclose(out[0, :2], [(18 + 0.5) * stride, (12 + 0.5) * stride], atol=1e-3)
    assert out[1, 2] < 0.5  # the map was split, and says so
    plain = SoftArgmax(stride=stride)(tf.constant(logits)).numpy()[0]
    assert abs(plain[1, 0] - out[1, 0]) > 20  # without it: towards the brighter look-alike
    trained = guided(tf.constant(logits), training=True).numpy()[0]
    np.testing.assert_allclose(trained, plain, atol=1e-5)
    around = SoftArgmax(stride=stride, peak=PEAK_RADIUS, relations=[relation])
    np.testing.assert_allclose(around(tf.constant(logits)).numpy()[0, 1, :2], out[1, :2],
                               atol=0.05)  # fmt: skip
    # A source the model is unsure of (its map spread over many cells) barely guides.
    unsure = logits.copy()
    unsure[0, :, :, 0] = 0.0
    unsure[0, 12, 18, 0] = 0.5
    weak = guided(tf.constant(unsure)).numpy()[0]
    assert weak[0, 2] < 0.05
    assert abs(weak[1, 0] - plain[1, 0]) < 3  # as without the relation


def test_read_around_the_peak_one_peak_reads_as_the_whole_map_does_a_flat_map_its_middle():
    rng = np.random.default_rng(3)
    stride, h, w = 4, 20, 20
    yy, xx = np.mgrid[0:h, 0:w]
    centre = (7.3, 12.6)  # (row, column) in cells
    logits = -((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / 2.0  # one Gaussian of σ 1 cell
    logits = (logits + rng.normal(0, 1e-3, (h, w)))[None, :, :, None].astype(np.float32)
    layer = SoftArgmax(stride=stride, peak=PEAK_RADIUS)
    np.testing.assert_allclose(layer(tf.constant(logits)).numpy(),
                               layer(tf.constant(logits), training=True).numpy(), atol=0.02)
    flat = np.zeros((1, h, w, 1), np.float32)
    np.testing.assert_allclose(layer(tf.constant(flat)).numpy()[0, 0, :2], [40.0, 40.0], atol=1e-4)

def test_stride_four_is_the_model_existing_files_hold():
    # The weight layout .kpmodel files record: the stride parameter must not change it.
    model = build_model("default", 4, 64)
    assert model.count_params() == 295_348
    assert model.get_layer(HEATMAP_LAYER).output.shape[1:] == (16, 16, 4)


def test_context_blocks_widen_the_receptive_field():
    """A keypoint's answer at one end of the input depends on pixels at the other end only with
    the plan's context blocks: the gradient of a corner cell's logit reaches across."""

    def reach(context):
        model = build_model("default", 1, 256, context=context)
        heat = keras.Model(model.inputs, model.get_layer(HEATMAP_LAYER).output)
        image = tf.Variable(tf.random.uniform((1, 256, 256, 3), 0, 255, seed=1))
        with tf.GradientTape() as tape:
            logit = heat(image, training=False)[0, 2, 2, 0]  # a cell near the top-left corner
        grad = tf.reduce_sum(tf.abs(tape.gradient(logit, image)[0]), axis=-1).numpy()
        ys, xs = np.nonzero(grad > 0)
        return max(xs.max(), ys.max())

    assert reach(0) < 160 < reach(2)  # 87 + 48 px of field without; 256 more with two blocks
    with pytest.raises(ValueError, match="context"):
        build_model("default", 1, 64, context=9)


def test_stride_two_head_predicts_on_a_finer_grid():
    model = build_model("default", 5, 64, stride=2)
    assert model.get_layer(HEATMAP_LAYER).output.shape[1:] == (32, 32, 5)
    assert model.count_params() > build_model("default", 5, 64).count_params()
    out = model(tf.zeros((2, 64, 64, 3)), training=False).numpy()
    assert out.shape == (2, 5, 3)
    assert np.all((out[..., :2] >= 0) & (out[..., :2] <= 64))
    # Crop-trained models take any size: the same weights serve whole images.
    free = build_model("default", 5, None, stride=2)
    free.set_weights(model.get_weights())
    assert free(tf.zeros((1, 96, 96, 3))).shape == (1, 5, 3)
    with pytest.raises(ValueError, match="stride"):
        build_model("default", 5, 64, stride=8)
