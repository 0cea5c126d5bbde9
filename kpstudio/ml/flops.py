"""Analytic FLOP counts of a model and this CPU's matmul peak, to say how well training uses it.

A FLOP here is one multiply or one add: a multiply-add counts 2. Only the layers that carry the
arithmetic are counted (convolutions, transposed and depthwise/separable convolutions, Dense);
elementwise and cheap layers (bias adds, BatchNorm, activations, Add, pooling, resizing,
softmax, the soft-argmax head) are ignored: together they are a few percent of a conv net's
work, but they are memory-bound, so they do cost time that these counts do not explain.
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np

_CONV = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_TRANSPOSE = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
              keras.layers.Conv3DTranspose)  # fmt: skip


def forward_flops(model: keras.Model) -> int:
    """FLOPs (2 per multiply-add) of one forward pass on ONE image.

    Per output position a convolution does prod(kernel shape) multiply-adds (kh·kw·c_in/groups
    ·c_out, or kh·kw·c_in·multiplier for a depthwise one), so a Conv2D costs
    out_h·out_w·kh·kw·c_in·c_out·2, with strides and padding taken from the layer's actual
    output shape. A transposed convolution scatters its kernel once per INPUT position. Dense
    costs in·out·2 per position it is applied at. Nested models are walked recursively; a layer
    called several times counts once per call. Bias adds and elementwise layers are ignored
    (see the module docstring)."""
    total = 0
    for layer, in_shape, out_shape in _calls(model):
        if hasattr(layer, "layers"):  # a nested Model / Sequential
            total += forward_flops(layer)
        else:
            total += 2 * _macs(layer, in_shape, out_shape)
    return total


def training_flops(model: keras.Model) -> int:
    """FLOPs of one training step per image: 3 × forward, the usual estimate (the backward pass
    costs about twice the forward one: gradients with respect to activations and to weights)."""
    return 3 * forward_flops(model)


def measure_matmul_flops(seconds: float = 3.0, n: int = 2048) -> float:
    """This machine's sustained float32 FLOP/s on n×n matmuls (tf.linalg.matmul, every core TF
    uses): the practical peak that training throughput is compared with."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = tf.constant(rng.standard_normal((n, n), dtype=np.float32))
    b = tf.constant(rng.standard_normal((n, n), dtype=np.float32))
    for _ in range(2):  # warm-up: thread pools, oneDNN kernels, caches
        float(tf.linalg.matmul(a, b)[0, 0])
    done, started = 0, time.perf_counter()
    while True:
        c = tf.linalg.matmul(a, b)
        float(c[0, 0])  # wait for the result (eager CPU ops are synchronous, but be sure)
        done += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return 2.0 * n**3 * done / elapsed


def _calls(model) -> list[tuple]:
    """(layer, input shape, output shape) for each layer call in the model's graph."""
    graph = getattr(model, "_functional", None) or model  # a built Sequential wraps a Functional
    by_depth = getattr(graph, "_nodes_by_depth", None)
    if by_depth is None:  # not a graph network: each layer's first call
        return [(x, _shape(x.input), _shape(x.output)) for x in model.layers if x._inbound_nodes]
    nodes = [node for depth in by_depth.values() for node in depth]
    return [
        (node.operation, _shape(node.input_tensors), _shape(node.outputs))
        for node in nodes
        if not isinstance(node.operation, (keras.layers.InputLayer, type(None)))
    ]


def _shape(tensors) -> tuple:
    while isinstance(tensors, (list, tuple)) and not hasattr(tensors, "shape"):
        if len(tensors) != 1:
            return ()  # several inputs or outputs: no layer counted here has them
        tensors = tensors[0]
    return tuple(tensors.shape)


def _positions(shape: tuple) -> int:
    """Spatial (or sequence) positions of a (batch, ..., channels) shape."""
    if any(d is None for d in shape[1:]):
        raise ValueError(f"FLOPs need a fixed input size; a layer sees {shape}")
    return math.prod(int(d) for d in shape[1:-1])


def _macs(layer, in_shape: tuple, out_shape: tuple) -> int:
    if isinstance(layer, _SEPARABLE):
        depthwise = math.prod(layer.depthwise_kernel.shape)
        pointwise = math.prod(layer.pointwise_kernel.shape)
        return _positions(out_shape) * (depthwise + pointwise)
    if isinstance(layer, _CONV + _DEPTHWISE):
        # Depthwise kernels are (kh, kw, c_in, multiplier): one MAC per weight per position too.
        return _positions(out_shape) * math.prod(layer.kernel.shape)
    if isinstance(layer, _TRANSPOSE):
        return _positions(in_shape) * math.prod(layer.kernel.shape)
    if isinstance(layer, keras.layers.Dense):
        return _positions(out_shape) * math.prod(layer.kernel.shape)  # 1 position for (B, in)
    return 0
