"""The batch runner: onnxruntime (when installed) answers as TensorFlow does, any batch size up
to the one it was made for, and a wrong runtime name is refused."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY_PARAMS, tiny_model

from kpstudio.core.skeleton import Skeleton
from kpstudio.ml.batch_runner import make_runner
from kpstudio.ml.predictor import Predictor


@pytest.fixture(scope="module")
def predictor():
    manifest = {"skeleton": Skeleton.create(["a", "b", "c"]).to_dict(), "input_size": 64,
                "architecture": {"name": "default", "params": TINY_PARAMS}}  # fmt: skip
    return Predictor(tiny_model(), manifest)


def test_onnxruntime_matches_tensorflow(predictor):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    batch = np.random.default_rng(0).integers(0, 256, (3, 64, 96, 3), np.uint8)
    tf_run, _ = make_runner(predictor, 64, 96, 4, "tensorflow")
    ort_run, name = make_runner(predictor, 64, 96, 4, "onnxruntime")
    assert "onnxruntime" in name
    np.testing.assert_allclose(ort_run(batch), tf_run(batch), atol=1e-3)


def test_an_unknown_runtime_is_refused(predictor):
    with pytest.raises(ValueError, match="unknown runtime"):
        make_runner(predictor, 64, 64, 4, "cuda-magic")
