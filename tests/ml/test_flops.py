"""FLOP counts: hand-computed on tiny models, and the seed model's known size."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
pytest.importorskip("tensorflow")

import keras  # noqa: E402
from keras import layers  # noqa: E402

from kpstudio.ml.flops import forward_flops, measure_matmul_flops, training_flops  # noqa: E402
from kpstudio.ml.models import build_model  # noqa: E402


def tiny_model() -> keras.Model:
    inputs = keras.Input((10, 10, 3))
    x = layers.Conv2D(4, 3, padding="valid", activation="relu")(inputs)  # 8×8×4
    x = layers.BatchNormalization()(x)  # elementwise: not counted
    x = layers.Conv2D(6, 3, strides=2, padding="same")(x)  # 4×4×6
    x = layers.Flatten()(x)  # 96
    return keras.Model(inputs, layers.Dense(5)(x))


# Multiply-adds by hand: out_h·out_w·k_h·k_w·c_in·c_out per conv, in·out per Dense.
TINY_MACS = 8 * 8 * 3 * 3 * 3 * 4 + 4 * 4 * 3 * 3 * 4 * 6 + 96 * 5


def test_conv_and_dense_counts_match_the_hand_count():
    model = tiny_model()
    assert forward_flops(model) == 2 * TINY_MACS == 21696
    assert training_flops(model) == 3 * forward_flops(model)


def test_valid_padding_and_stride_change_the_count():
    same = keras.Sequential([keras.Input((9, 9, 2)), layers.Conv2D(3, 3, padding="same")])
    valid = keras.Sequential([keras.Input((9, 9, 2)), layers.Conv2D(3, 3, padding="valid")])
    strided = keras.Sequential(
        [keras.Input((9, 9, 2)), layers.Conv2D(3, 3, strides=2, padding="same")]
    )
    per_position = 3 * 3 * 2 * 3
    assert forward_flops(same) == 2 * 9 * 9 * per_position
    assert forward_flops(valid) == 2 * 7 * 7 * per_position
    assert forward_flops(strided) == 2 * 5 * 5 * per_position


def test_depthwise_transpose_and_nested_models():
    inputs = keras.Input((8, 8, 4))
    x = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(inputs)  # 8×8×8
    x = layers.Conv2DTranspose(5, 2, strides=2)(x)  # 16×16×5, kernel scattered per input pixel
    inner = keras.Model(inputs, x)
    outer_in = keras.Input((8, 8, 4))
    outer = keras.Model(outer_in, layers.Dense(7)(inner(outer_in)))  # Dense on every pixel
    depthwise = 8 * 8 * 3 * 3 * 4 * 2
    transpose = 8 * 8 * 2 * 2 * 8 * 5
    dense = 16 * 16 * 5 * 7
    assert forward_flops(inner) == 2 * (depthwise + transpose)
    assert forward_flops(outer) == 2 * (depthwise + transpose + dense)


def test_shared_layer_counts_once_per_call():
    dense = layers.Dense(4)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, dense(layers.Dense(3)(dense(layers.Dense(3)(inputs)))[..., :3]))
    assert forward_flops(model) == 2 * (3 * 3 + 3 * 4 + 4 * 3 + 3 * 4)


def test_seed_model_is_dominated_by_conv2_and_the_big_dense():
    model = build_model("seed", 4, 64)
    assert round(model.count_params() / 1e6, 1) == 51.4
    conv1 = 60 * 60 * 5 * 5 * 3 * 32
    conv2 = 56 * 56 * 5 * 5 * 32 * 64
    dense = 56 * 56 * 64 * 256 + 256 * 8
    assert forward_flops(model) == 2 * (conv1 + conv2 + dense) == 441_170_944


def test_default_model_costs_far_less_than_the_seed_at_the_same_size():
    seed = forward_flops(build_model("seed", 4, 64))
    default = forward_flops(build_model("default", 4, 64))
    assert 0 < default < seed / 5


def test_matmul_rate_is_the_products_timed_over_the_time_they_took(monkeypatch):
    import tensorflow as tf

    import kpstudio.ml.flops as flops

    shapes = []
    real_matmul = tf.linalg.matmul

    def counting_matmul(a, b):
        shapes.append((tuple(a.shape), tuple(b.shape)))
        return real_matmul(a, b)

    clock = iter([0.0, 0.25, 0.5, 0.75, 1.0, 1.25])  # each reading 0.25 s after the last
    monkeypatch.setattr(tf.linalg, "matmul", counting_matmul)
    monkeypatch.setattr(flops, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    rate = measure_matmul_flops(seconds=1.0, n=48)
    assert shapes == [((48, 48), (48, 48))] * 6  # 2 warm-up products, then 4 in one second
    assert rate == 2 * 48**3 * 4 / 1.0
