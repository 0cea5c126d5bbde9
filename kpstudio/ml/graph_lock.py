"""Building TensorFlow graphs and Keras models one thread at a time.

TensorFlow and Keras are not thread-safe while they *build*: two threads tracing graphs over the
same Keras model crashed the test process with a bus error (the video player's frame thread
tracing its Predictor while the Predict-whole-video job converted that model to ONNX; see
tensorflow#33986 and keras#5223 for the same race elsewhere). *Running* a traced graph is safe
and stays parallel. So everything that builds — a model, the first call of a tf.function with
new argument shapes (a trace), an export's conversion, loading a saved model — holds
GRAPH_LOCK, and nothing else does.

GRAPH_LOCK is re-entrant (a conversion may build a model) and only ever held by worker
threads' short build steps, never while waiting on another thread.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TypeVar

import tensorflow as tf

GRAPH_LOCK = threading.RLock()

F = TypeVar("F", bound=Callable)


def builds_graphs(fn: F) -> F:
    """Decorator: `fn` builds models or graphs, so it runs holding GRAPH_LOCK."""

    @functools.wraps(fn)
    def locked(*args, **kwargs):
        with GRAPH_LOCK:
            return fn(*args, **kwargs)

    return locked  # type: ignore[return-value]


class Traced:
    """A tf.function whose traces happen under GRAPH_LOCK. A tf.function traces on a call whose
    arguments differ in shape, dtype or Python value from every earlier call; such a call here
    holds the lock, later calls like it run unlocked (in parallel with other threads)."""

    def __init__(self, function: Callable):
        self.function = function
        self._seen: set = set()

    def __call__(self, *args):
        key = _signature(args)
        if key in self._seen:
            return self.function(*args)
        with GRAPH_LOCK:
            out = self.function(*args)
            self._seen.add(key)
        return out


def traced(fn: Callable | None = None, **tf_function_kwargs):
    """tf.function(fn, **kwargs) wrapped in Traced; usable as @traced or @traced(jit_compile=…)."""
    if fn is None:
        return lambda f: Traced(tf.function(f, **tf_function_kwargs))
    return Traced(tf.function(fn, **tf_function_kwargs))


def _signature(args) -> tuple:
    """What decides whether tf.function traces again: each tensor's shape and dtype, and any
    other value itself."""
    key = []
    for x in tf.nest.flatten(args):
        shape = getattr(x, "shape", None)
        if shape is not None and hasattr(x, "dtype"):
            key.append((tuple(shape), str(x.dtype)))
        else:
            key.append((type(x).__name__, repr(x)))
    return tuple(key)
