"""Graphs are built one thread at a time, run in parallel (kpstudio.ml.graph_lock).

Two threads tracing over one Keras model crashed a CI run with a bus error (the video player's
frame thread and the Predict-whole-video job). These tests pin the rule that prevents it: a
trace holds GRAPH_LOCK, a call that does not trace does not wait for it."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_PARAMS, tiny_model

from kpstudio.core.skeleton import Skeleton
from kpstudio.ml.batch_runner import make_runner
from kpstudio.ml.graph_lock import GRAPH_LOCK, traced
from kpstudio.ml.predictor import Predictor


def lock_is_free_for_another_thread() -> bool:
    result = []

    def probe():
        got = GRAPH_LOCK.acquire(blocking=False)
        if got:
            GRAPH_LOCK.release()
        result.append(got)

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    return result[0]


def test_a_trace_holds_the_lock_and_a_call_that_does_not_trace_runs_without_it():
    seen_while_tracing = []

    @traced
    def double(x):
        seen_while_tracing.append(lock_is_free_for_another_thread())  # Python runs only on trace
        return x * 2

    assert double(tf.ones([2])).numpy().tolist() == [2, 2]
    assert seen_while_tracing == [False]  # traced under the lock

    # Another thread holds the lock (as a long trace would): the traced shape still runs.
    held, release = threading.Event(), threading.Event()

    def holder():
        with GRAPH_LOCK:
            held.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(10)
    try:
        assert double(tf.ones([2]) * 3).numpy().tolist() == [6, 6]
    finally:
        release.set()
        t.join()
    assert len(seen_while_tracing) == 1  # no new trace
    double(tf.ones([3]))  # a new shape traces again, under the lock
    assert seen_while_tracing == [False, False]


@pytest.fixture()
def predictor():
    manifest = {"skeleton": Skeleton.create(["a", "b", "c"]).to_dict(), "input_size": 64,
                "architecture": {"name": "default", "params": TINY_PARAMS}}  # fmt: skip
    return Predictor(tiny_model(), manifest)


def test_one_model_traced_and_converted_from_two_threads_at_once(predictor):
    """The player's case: one thread predicts frames while another converts the same model for
    a whole-video run. Both finish and agree."""
    frames = np.random.default_rng(1).integers(0, 256, (4, 64, 64, 3), np.uint8)
    errors, answers = [], {}

    def player():
        try:
            answers["player"] = np.stack([p.xy for p in predictor.predict_arrays(frames)])
        except Exception as exc:  # reported below
            errors.append(exc)

    def job():
        try:
            run, _ = make_runner(predictor, 64, 64, 4, "auto")
            answers["job"] = run(frames)[..., :2]
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=player), threading.Thread(target=job)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    # Both in input pixels of a 64-px frame: the letterbox is the identity here.
    np.testing.assert_allclose(answers["player"], answers["job"], atol=1e-2)
