"""Keypoint models, built by name from our own code (never from a config found in a file).

Contract shared by every architecture, the trainer, the predictor and the exports:
  input  (B, S, S, 3) float32, RGB, values 0..255, letterboxed (see kpstudio.core.letterbox)
  output (B, K, 3) float32: x, y in model-input pixels (pixel-corner convention) and a
         confidence in [0, 1]
Normalisation happens inside the model, so an exported file needs no preprocessing code
beyond the letterbox.
"""

from __future__ import annotations

import weakref

import keras
from keras import layers, ops

from kpstudio.ml.soft_argmax import SoftArgmax, cell_centres  # noqa: F401  (re-exported)

ARCHITECTURES = ("default", "seed")
HEATMAP_LAYER = "heatmaps"  # the default model's logits, used by the training loss
HEATMAP_STRIDE = 4  # input pixels per heatmap cell in the default model (its usual head)
HEATMAP_STRIDES = (4, 2)  # the heatmap strides the default model can be built with
HEATMAP_SIGMA = 1.0  # the training target's Gaussian width, in cells (kpstudio.ml.losses)
# Reading a keypoint around its map's peak (SoftArgmax's `peak`) looks this many cells around
# it: 3 σ of the target, where the Gaussian the map was trained towards has fallen to 1 %.
PEAK_RADIUS = round(3 * HEATMAP_SIGMA)
MAX_CONTEXT = 4  # context blocks at stride 32 (weight_layout.MAX_CONTEXT)
CONTEXT_DILATION = 2


@keras.saving.register_keras_serializable(package="kpstudio")
class BatchNormalization(layers.BatchNormalization):
    """Keras' BatchNormalization, trained with TensorFlow's fused kernel.

    Why: Keras 3 computes the batch moments, the normalisation and the moving-average update
    as a dozen small ops, and their gradient as as many again; on a 2-core CPU at 64×64 those
    cost about a tenth of a training step. FusedBatchNormV3 does the forward pass and the
    moving averages in one op and the gradient in one more. Inference runs Keras' own code,
    so exported graphs are the standard ones. The class keeps Keras' name so the weight file
    layout (keyed by class name) is the same as a plain BatchNormalization's."""

    def call(self, inputs, training=None, mask=None):
        fusable = (training and self.trainable and mask is None and not self.renorm
                   and self.axis in (-1, len(inputs.shape) - 1) and len(inputs.shape) == 4
                   and self.scale and self.center)  # fmt: skip
        if not fusable:
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf  # the ml layer runs on the TensorFlow backend

        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma.value, self.beta.value, mean=self.moving_mean.value,
            variance=self.moving_variance.value, epsilon=self.epsilon, data_format="NHWC",
            is_training=True, exponential_avg_factor=1.0 - self.momentum,
        )  # fmt: skip
        # With exponential_avg_factor the op returns the updated moving averages.
        self.moving_mean.assign(mean)
        self.moving_variance.assign(variance)
        return y


def build_model(arch: str, num_keypoints: int, input_size: int | None, **params) -> keras.Model:
    """A fresh model of architecture `arch` for K keypoints and S×S inputs.

    input_size None (default architecture only): any size divisible by 32, as the trainer uses
    to learn on crops; weights are interchangeable with a fixed-size build."""
    if arch == "seed":
        if params:  # the article's model has nothing to tune
            raise ValueError(f"the seed architecture takes no parameters, not {sorted(params)}")
        if input_size is None:
            raise ValueError("the seed architecture needs a fixed input size")
        return build_seed(num_keypoints, input_size)
    if arch == "default":
        return build_default(num_keypoints, input_size, **params)
    raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")


def build_seed(num_keypoints: int, input_size: int = 64) -> keras.Model:
    """The seed article's regressor, layer for layer: Conv2D(32, 5×5, relu) → Conv2D(64, 5×5,
    relu) → Flatten → Dense(256, relu) → Dense(2K). Its Dense output is read as coordinates in
    units of the input size (so targets are O(1) for MSE); the parameter-free head around it
    scales them to pixels and adds a constant confidence, to honour the shared contract."""
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    x = layers.Conv2D(32, (5, 5), activation="relu")(x)
    x = layers.Conv2D(64, (5, 5), activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dense(2 * num_keypoints, name="coordinates")(x)
    xy = layers.Reshape((num_keypoints, 2))(x) * float(input_size)
    outputs = ops.concatenate([xy, ops.ones_like(xy[..., :1])], axis=-1)
    return keras.Model(inputs, outputs, name="seed")


@keras.saving.register_keras_serializable(package="kpstudio")
class HintMaps(layers.Layer):
    """Hints (B, K, 3): x, y in input pixels and 1 where the user placed that keypoint (0: no
    hint) → (B, h, w, K) Gaussian maps of one cell's width on the grid of `like` (a feature
    map at `stride`)."""

    def __init__(self, stride: int, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)

    def call(self, hints, like):
        shape = ops.shape(like)
        xs = cell_centres(shape[2], self.stride)
        ys = cell_centres(shape[1], self.stride)
        dx = (xs[None, :, None] - hints[:, None, :, 0]) / self.stride  # (B, w, K)
        dy = (ys[None, :, None] - hints[:, None, :, 1]) / self.stride  # (B, h, K)
        gx, gy = ops.exp(-0.5 * dx * dx), ops.exp(-0.5 * dy * dy)
        return gy[:, :, None, :] * gx[:, None, :, :] * hints[:, None, None, :, 2]

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


@keras.saving.register_keras_serializable(package="kpstudio")
class NoHints(layers.Layer):
    """(B, K, 3) zeros for an image batch: the hint-conditioned model asked without hints."""

    def __init__(self, num_keypoints: int, **kwargs):
        super().__init__(**kwargs)
        self.num_keypoints = int(num_keypoints)

    def call(self, images):
        return ops.zeros((ops.shape(images)[0], self.num_keypoints, 3), dtype="float32")

    def get_config(self):
        return {**super().get_config(), "num_keypoints": self.num_keypoints}


# The two-input (image, hints) twin of each hint-conditioned model: same layers, same weights.
# Weak keys: keyed by id() instead, a later model given a freed model's id would have found
# that model's twin.
_HINTED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def hinted(model: keras.Model) -> keras.Model | None:
    """The model that also takes hints (B, K, 3), or None for a model built without them."""
    return _HINTED.get(model)


def build_default(
    num_keypoints: int, input_size: int = 256, width: int = 16, decoder: int = 48,
    bn_momentum: float = 0.9, stride: int = HEATMAP_STRIDE, hints: bool = False,
    context: int = 0, peak: int = 0, relations=(),
) -> keras.Model:  # fmt: skip
    """Heatmaps at stride 4 from a plain convolutional encoder (to stride 32 for context: left
    vs right needs to see the whole animal) and a feature-pyramid decoder, then SoftArgmax.

    Lean by measurement, on this 2-core CPU (benchmarks/bench_train.py, 10 minutes on the
    openfield set): a residual encoder with two convolutions per level and a 3×3 convolution
    at stride 4 trained 113 crops/s to 1.92 px (7× the seed's steps at 64×64); this one, with
    one convolution at the coarse levels, no projection shortcuts and the stride-4 level a
    plain sum of the upsampled pyramid and its lateral, trains 153 crops/s to 1.84 px (12×).
    Small convolutions cost a fixed overhead each on a CPU, so fewer layers beat thinner ones:
    narrower decoders saved FLOPs but no time.

    BatchNorm momentum 0.9 (not Keras' 0.99): with ~100 images an epoch is a handful of steps,
    and slow moving averages kept validation error high for minutes.

    stride 2 (chosen by the training plan when keypoints sit too close for stride-4 cells at an
    affordable scale) adds one more decoder level: the stride-4 map upsampled plus a lateral
    from the stride-2 features, like the stride-4 level. Stride 4 builds the same model as
    before the parameter existed.

    hints=True (the assisted labeling loop): the model also takes the keypoints the user has
    placed (B, K, 3) as Gaussian maps added into the decoder at strides 16 and 8 (3×3
    convolutions, initialised to zero so the model starts as the one without hints), where the
    decoder's convolutions spread them to the other keypoints: a corrected snout moves the
    ears' answer. The returned model takes the image only (no hints: what exports and video
    prediction see); `hinted(model)` is its two-input twin, sharing every weight.

    context (chosen by the training plan when the labeled object spans more of the input than
    the encoder sees, core/plan.py): that many residual 3×3 convolutions at stride 32 with
    dilation 2, each widening the receptive field by 4 cells (128 input pixels), so a keypoint
    can be told apart by what lies across the object (a side view's near and far paw by the
    mirror view below it). At 10×10 cells they cost little. 0 builds the model as before.

    peak and relations (chosen on the val images when training ends): SoftArgmax's reading
    at inference, around each map's peak (that many cells) or over the whole map (0), and the
    keypoint relations it reads each map a second time with (kpstudio.core.keypoint_relations).
    No weights."""
    if stride not in HEATMAP_STRIDES:
        raise ValueError(f"the heatmap stride must be one of {HEATMAP_STRIDES}, not {stride}")
    if input_size is not None and input_size % 32:
        raise ValueError(f"the default model needs an input size divisible by 32, not {input_size}")

    if not 0 <= context <= MAX_CONTEXT:
        raise ValueError(f"context must be 0 to {MAX_CONTEXT}, not {context}")
    if hints:
        return _build_hinted(num_keypoints, input_size, width, decoder, bn_momentum, stride,
                             context, peak, relations)  # fmt: skip

    # Layers are made in this exact order: weight files name them by it (files saved by
    # earlier versions must keep loading).
    def conv(x, filters, kernel=3, stride=1, relu=True, dilation=1):
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                          dilation_rate=dilation)(x)  # fmt: skip
        x = BatchNormalization(momentum=bn_momentum)(x)
        return layers.ReLU()(x) if relu else x

    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = conv(x, width, 3, 2)  # 1/2
    c4 = conv(conv(x, 2 * width, 3, 2), 2 * width)  # 1/4
    c8 = conv(conv(c4, 4 * width, 3, 2), 4 * width)  # 1/8
    c16 = conv(c8, 6 * width, 3, 2)  # 1/16
    c32 = conv(c16, 8 * width, 3, 2)  # 1/32
    for _ in range(context):
        c32 = layers.Add()([c32, conv(c32, 8 * width, 3, dilation=CONTEXT_DILATION)])
    p = conv(c32, decoder, 1)
    for skip in (c16, c8, c4):
        p = layers.UpSampling2D(2, interpolation="bilinear")(p)
        p = layers.Add()([p, conv(skip, decoder, 1, relu=False)])
        # At stride 4 a 3×3 convolution cost a fifth of the training step and bought no accuracy.
        p = conv(p, decoder, 3) if skip is not c4 else layers.ReLU()(p)
    if stride == 2:
        p = layers.UpSampling2D(2, interpolation="bilinear")(p)
        p = layers.ReLU()(layers.Add()([p, conv(x, decoder, 1, relu=False)]))
    heat = layers.Conv2D(num_keypoints, 1, name=HEATMAP_LAYER)(p)
    outputs = SoftArgmax(stride=stride, peak=peak, relations=relations, name="soft_argmax")(heat)
    return keras.Model(inputs, outputs, name="default")


def _build_hinted(
    k: int, input_size, width: int, decoder: int, momentum: float, stride: int, context: int,
    peak: int, relations=(),
):
    """build_default with hints: the same network, its decoder built once as layer objects and
    applied twice, without hints (the returned model) and with them (its `hinted` twin)."""

    def block(filters, kernel=3, stride=1, relu=True, dilation=1):
        made = [layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                              dilation_rate=dilation),
                BatchNormalization(momentum=momentum)]  # fmt: skip
        if relu:
            made.append(layers.ReLU())

        def apply(x):
            for one in made:
                x = one(x)
            return x

        return apply

    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = block(width, 3, 2)(x)  # 1/2
    c4 = block(2 * width)(block(2 * width, 3, 2)(x))  # 1/4
    c8 = block(4 * width)(block(4 * width, 3, 2)(c4))  # 1/8
    c16 = block(6 * width, 3, 2)(c8)  # 1/16
    c32 = block(8 * width, 3, 2)(c16)  # 1/32
    for _ in range(context):
        c32 = layers.Add()([c32, block(8 * width, 3, dilation=CONTEXT_DILATION)(c32)])
    top = block(decoder, 1)(c32)
    laterals = {16: block(decoder, 1, relu=False)(c16), 8: block(decoder, 1, relu=False)(c8),
                4: block(decoder, 1, relu=False)(c4)}  # fmt: skip
    smooth = {16: block(decoder), 8: block(decoder)}
    lateral2 = block(decoder, 1, relu=False)(x) if stride == 2 else None
    hint_convs = {level: layers.Conv2D(decoder, 3, padding="same", use_bias=False,
                                       kernel_initializer="zeros", name=f"hints_{level}")
                  for level in (16, 8)}  # fmt: skip
    heat_conv = layers.Conv2D(k, 1, name=HEATMAP_LAYER)
    soft_argmax = SoftArgmax(stride=stride, peak=peak, relations=relations, name="soft_argmax")

    def decode(hint_points):
        p = top
        for level in (16, 8, 4):
            p = layers.UpSampling2D(2, interpolation="bilinear")(p)
            p = layers.Add()([p, laterals[level]])
            if level in hint_convs:
                p = layers.Add()([p, hint_convs[level](HintMaps(level)(hint_points, p))])
            p = smooth[level](p) if level in smooth else layers.ReLU()(p)
        if lateral2 is not None:
            p = layers.UpSampling2D(2, interpolation="bilinear")(p)
            p = layers.ReLU()(layers.Add()([p, lateral2]))
        return soft_argmax(heat_conv(p))

    model = keras.Model(inputs, decode(NoHints(k)(inputs)), name="default")
    hint_in = keras.Input((k, 3), name="hints")
    _HINTED[model] = keras.Model([inputs, hint_in], decode(hint_in), name="default_hinted")
    return model


def with_heatmaps(model: keras.Model) -> keras.Model | None:
    """The same model also returning its heatmap logits (for the training loss); None for
    architectures without heatmaps. A hint-conditioned model's takes [image, hints]."""
    try:
        layer = model.get_layer(HEATMAP_LAYER)
    except ValueError:
        return None
    twin = hinted(model)
    if twin is not None:  # the heatmap layer's second application is the one with hints
        heat = layer._inbound_nodes[1].output_tensors[0]
        return keras.Model(twin.inputs, [twin.outputs[0], heat])
    return keras.Model(model.inputs, [model.outputs[0], layer.output])
