"""The fastest way found to run a model on batches of frames on a CPU, checked against Keras.

Measured on the shared 2-core CPU this was built on: the Keras model exported in memory to ONNX
and run by onnxruntime did ~2× the frames per second of a tf.function with a fixed batch
signature (369 vs 182 frames/s at 256×192, batch 32). onnxruntime is used when it and tf2onnx
are installed (the `export` extra) and its answers match TensorFlow's on two frames; else the
tf.function.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from kpstudio.ml.models import build_model
from kpstudio.ml.predictor import Predictor

RUNTIMES = ("auto", "onnxruntime", "tensorflow")
PARITY_PX = 0.05  # onnxruntime must agree with TensorFlow this closely to be used
# onnxruntime's threads spin while they wait for work by default; a video's reader thread needs
# those cores between batches (measured: ~8% less CPU per frame for the same wall time).
ORT_CONFIG = {"session.intra_op.allow_spinning": "0"}


@functools.lru_cache(maxsize=4)
def make_runner(
    predictor: Predictor, canvas_h: int, canvas_w: int, batch_size: int, runtime: str = "auto"
) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """(run, description): run maps a (n ≤ batch_size, H, W, 3) uint8 RGB batch to (n, K, 3)
    float32 model output (x, y in canvas pixels, confidence). Cached: several videos of one
    size share one conversion."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
    model = predictor.model
    if (canvas_h, canvas_w) != tuple(model.input_shape[1:3]):
        arch = predictor.manifest["architecture"]
        model = build_model(arch["name"], len(predictor.skeleton), None, **arch.get("params", {}))
        model.set_weights(predictor.model.get_weights())

    def forward(batch):  # uint8 in: the cast runs inside the graph, not in numpy
        return model(tf.cast(batch, tf.float32), training=False)

    fixed = tf.TensorSpec([batch_size, canvas_h, canvas_w, 3], tf.uint8)
    tf_run = tf.function(forward, input_signature=[fixed])  # one graph, traced once

    def run_tf(batch: np.ndarray) -> np.ndarray:
        n = len(batch)
        if n < batch_size:  # the last batch: pad to the traced shape
            padding = np.zeros((batch_size - n,) + batch.shape[1:], batch.dtype)
            batch = np.concatenate([batch, padding])
        return tf_run(batch).numpy()[:n]

    tf_name = f"TensorFlow {tf.__version__} tf.function, batch {batch_size}"
    if runtime == "tensorflow":
        return run_tf, tf_name
    try:
        run_ort, name = _onnx_runner(forward, canvas_h, canvas_w)
    except ImportError as exc:
        if runtime == "onnxruntime":
            raise ValueError(f"--runtime onnxruntime needs the export extra: {exc}") from None
        return run_tf, f"{tf_name} (onnxruntime not installed)"
    sample = np.random.default_rng(0).integers(0, 256, (2, canvas_h, canvas_w, 3), np.uint8)
    # Eager on two frames: tracing the fixed-batch graph just to compare would cost seconds.
    expected = forward(tf.constant(sample)).numpy()
    diff = float(np.max(np.abs(run_ort(sample)[..., :2] - expected[..., :2])))
    if diff > PARITY_PX:
        if runtime == "onnxruntime":
            raise ValueError(f"onnxruntime differs from TensorFlow by {diff:.3f} px")
        return run_tf, f"{tf_name} (onnxruntime differed by {diff:.3f} px)"
    return run_ort, f"{name}, {diff:.4f} px from TensorFlow"


def _onnx_runner(forward, canvas_h: int, canvas_w: int):
    import warnings

    import onnxruntime as ort
    import tf2onnx

    spec = [tf.TensorSpec([None, canvas_h, canvas_w, 3], tf.uint8, name="image")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf2onnx's numpy deprecation chatter
        proto, _ = tf2onnx.convert.from_function(
            tf.function(forward), input_signature=spec, opset=17
        )
    options = ort.SessionOptions()
    for key, value in ORT_CONFIG.items():
        options.add_session_config_entry(key, value)
    session = ort.InferenceSession(
        proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {name: np.ascontiguousarray(batch)})[0]

    return run, f"onnxruntime {ort.__version__} (converted in memory by tf2onnx)"
