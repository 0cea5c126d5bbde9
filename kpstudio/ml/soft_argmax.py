"""The default model's last layer: heatmap logits → keypoint coordinates and confidences."""

from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="kpstudio")
class SoftArgmax(layers.Layer):
    """Heatmap logits (B, h, w, K) → (B, K, 3): expected x, y in input pixels + confidence.

    Integral regression: a spatial softmax turns each map into a probability distribution and
    its mean is the coordinate, so training can regress coordinates directly yet keep the
    spatial inductive bias of heatmaps. Confidence is the probability mass near that mean
    (a Gaussian window of `window` cells): 1 for a sharp single peak, low for a spread or
    split distribution.

    `peak` > 0: at inference (training false or unset) the mean is taken around the highest
    peak only, within `peak` cells of its row and column. A map that also lights up elsewhere
    (a second paw that looks alike, the other view of a mirror rig) then answers at its best
    peak instead of somewhere between the two, and the softmax's long tails no longer pull the
    answer towards the middle of the map; but where a map is wide rather than split, its
    argmax cell is noisier than its mean.

    `relations` (rows of kpstudio.core.keypoint_relations: keypoint, axis, source,
    source_axis, slope, intercept, sd, in input pixels): at inference each map is read once,
    then a second time with its logits plus a Gaussian log-prior along the axis of each of its
    relations, centred where the source keypoint's first reading puts it and weighted by that
    reading's confidence. A map split between the near and the far paw then answers at the one
    its other view agrees with.

    Which reading a model gets is chosen on its val images when training ends
    (kpstudio.ml.peak_reading). The confidence always divides by the whole map without the
    prior, so a split map keeps its low confidence. Training always takes the mean over the
    whole map, whose gradient reaches every cell.
    """

    def __init__(self, stride: int, window: float = 1.5, peak: int = 0, relations=(),
                 **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.stride = int(stride)
        self.window = float(window)
        self.peak = int(peak)  # read within this many cells of the peak at inference; 0: all
        self.relations = [list(row) for row in relations]

    def call(self, logits, training=None):
        # Each keypoint's (h, w) map is walked as few times as possible: the exponentials once,
        # then reduced to x and y marginals; normalising and the confidence window (a separable
        # Gaussian) work on those marginals, not on full maps. Head and loss, forward and
        # backward, for 16 inputs × 68 keypoints × 40² cells: ~80 ms with full maps (the
        # probabilities, a window and a target map per keypoint), ~45 ms so (2 loaded cores).
        top = ops.max(logits, axis=(1, 2), keepdims=True)
        e = ops.exp(logits - ops.stop_gradient(top))  # (B, h, w, K), unnormalised
        shape = ops.shape(logits)
        xs = cell_centres(shape[2], self.stride)
        ys = cell_centres(shape[1], self.stride)
        total = ops.sum(e, axis=(1, 2))  # (B, K)
        x, y = self._read(e, logits, top, xs, ys, training)
        if self.relations and not training:
            sure = self._confidence(e, total, x, y, xs, ys)
            prior_x, prior_y = self._log_prior(x, y, sure, xs, ys)
            guided = logits + prior_x[:, None] + prior_y[:, :, None]
            guided_top = ops.max(guided, axis=(1, 2), keepdims=True)
            x, y = self._read(ops.exp(guided - guided_top), guided, guided_top, xs, ys, False)
        confidence = self._confidence(e, total, x, y, xs, ys)
        return ops.stack([x, y, confidence], axis=-1)

    def _confidence(self, e, total, x, y, xs, ys):
        """(B, K): each map's share of probability within the window around (x, y)."""
        gx = self._window(xs, x)  # (B, w, K)
        gy = self._window(ys, y)  # (B, h, K)
        return ops.sum(ops.sum(e * gx[:, None], axis=2) * gy, axis=1) / total

    def _read(self, e, logits, top, xs, ys, training):
        """The mean of each map `e` (unnormalised probabilities), whole or around its peak."""
        near = e if training or not self.peak else e * self._around_peak(logits, top, self.peak)
        along_x = ops.sum(near, axis=1)  # (B, w, K)
        along_y = ops.sum(near, axis=2)  # (B, h, K)
        mass = ops.sum(along_x, axis=1)  # (B, K): the total, or the mass around the peak
        x = ops.sum(along_x * xs[None, :, None], axis=1) / mass
        y = ops.sum(along_y * ys[None, :, None], axis=1) / mass
        return x, y

    def _log_prior(self, x, y, sure, xs, ys):
        """(B, w, K) and (B, h, K): each keypoint's Gaussian log-prior along x and along y from
        its relations (0 where it has none), around where the sources' readings put it, and
        only as strong as each source's map is sure of its reading (`sure`, (B, K)): a source
        the model cannot see well (an occluded paw) must not drag another keypoint along."""
        coords = ops.reshape(ops.stack([x, y], axis=-1), (-1, 2 * ops.shape(x)[1]))  # (B, 2K)
        out = []
        for axis, centres in ((0, xs), (1, ys)):
            rows = [r for r in self.relations if r[1] == axis]
            if not rows:
                out.append(ops.zeros_like(centres)[None, :, None])
                continue
            sources = [2 * r[2] + r[3] for r in rows]
            slope, intercept, sd = (ops.array([r[i] for r in rows], dtype="float32")
                                    for i in (4, 5, 6))  # fmt: skip
            implied = ops.take(coords, sources, axis=1) * slope + intercept  # (B, R)
            d = (centres[None, :, None] - implied[:, None, :]) / sd  # (B, n, R)
            weight = ops.take(sure, [r[2] for r in rows], axis=1)[:, None, :]  # (B, 1, R)
            # A one-hot (R, K) puts each row's log-prior into its keypoint's column.
            onehot = ops.one_hot(ops.array([r[0] for r in rows], dtype="int32"),
                                 x.shape[1], dtype="float32")  # fmt: skip
            out.append(ops.einsum("bnr,rk->bnk", -0.5 * d * d * weight, onehot))
        return out[0], out[1]

    @staticmethod
    def _around_peak(logits, peak, radius: int):
        """(B, h, w, K) 0/1: the cells within `radius` rows and columns of a map's highest
        cell (of all of them, if several tie: a flat map keeps the whole map)."""
        at_peak = ops.cast(logits >= peak, "float32")
        size = 2 * radius + 1
        rows = ops.max_pool(ops.max(at_peak, axis=2), size, 1, "same")  # (B, h, K)
        cols = ops.max_pool(ops.max(at_peak, axis=1), size, 1, "same")  # (B, w, K)
        return rows[:, :, None, :] * cols[:, None, :, :]

    def _window(self, centres, mean):
        d = (centres[None, :, None] - mean[:, None, :]) / self.stride
        return ops.exp(-(d * d) / (2.0 * self.window**2))

    def get_config(self):
        return {**super().get_config(), "stride": self.stride, "window": self.window,
                "peak": self.peak, "relations": self.relations}  # fmt: skip


def cell_centres(n, stride: int):
    """Centres of n heatmap cells in input pixels: cell j covers [j*stride, (j+1)*stride)."""
    return (ops.cast(ops.arange(n), "float32") + 0.5) * stride
