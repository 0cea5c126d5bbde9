"""Hint-conditioned models: the user's placed keypoints as an extra input that moves the other
keypoints' answers; without hints the model is the plain one."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
pytest.importorskip("tensorflow")

from kpstudio.core.demo import build_demo_project  # noqa: E402
from kpstudio.core.project import Project  # noqa: E402
from kpstudio.core.training_set import snapshot  # noqa: E402
from kpstudio.ml.config import TrainConfig  # noqa: E402
from kpstudio.ml.models import build_model, hinted  # noqa: E402
from kpstudio.ml.planning import parse_setting  # noqa: E402
from kpstudio.ml.predictor import Predictor  # noqa: E402
from kpstudio.ml.train import train  # noqa: E402
from kpstudio.ml.weight_layout import expected_weight_shapes  # noqa: E402

PARAMS = {"width": 8, "decoder": 16, "hints": True}


def test_without_hints_the_model_is_its_hinted_twin_given_none():
    model = build_model("default", 4, 64, **PARAMS)
    twin = hinted(model)
    assert twin is not None and hinted(build_model("default", 4, 64)) is None
    assert sorted(map(list, (w.shape for w in model.weights))) == sorted(
        expected_weight_shapes("default", PARAMS, 4, 64))
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    plain = model(images).numpy()
    assert np.allclose(twin([images, np.zeros((2, 4, 3), "float32")]).numpy(), plain)
    # The hint convolutions start at zero: a fresh model ignores hints until it learns them.
    given = np.zeros((2, 4, 3), "float32")
    given[:, 0] = (10.0, 20.0, 1.0)
    assert np.allclose(twin([images, given]).numpy(), plain)


def test_hints_are_an_architecture_setting_and_off_removes_it():
    config = parse_setting(TrainConfig(), "hints=1")
    assert config.params == {"hints": True} and config.overrides == {"hints": True}
    assert parse_setting(config, "hints=0").params == {}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hints") / "demo"
    build_demo_project(folder, n_images=20)
    with Project.open(folder, readonly=True) as project:
        data = snapshot(project)
    config = TrainConfig(arch="default", input_size=64, crop_size=0, batch_size=8, epochs=3,
                         params=dict(PARAMS))  # fmt: skip
    return data, train(data, config)


def test_a_hinted_model_trains_saves_and_answers_from_hints(trained):
    data, result = trained
    predictor = Predictor.from_file(result.model_path)
    assert predictor.takes_hints
    from kpstudio.core.image_reader import read_image

    image = read_image(data.paths[0])
    names = data.skeleton.keypoints
    given = {names[0]: (33.0, 44.0)}
    pred = predictor.predict_with_hints(image, given)
    assert tuple(pred.xy[0]) == (33.0, 44.0) and pred.confidence[0] == 1.0
    assert pred.xy.shape == (len(names), 2) and np.isfinite(pred.xy).all()
    plain = predictor.predict_array(image)
    assert np.allclose(predictor.predict_with_hints(image, {}).xy, plain.xy, atol=1e-3)


def test_a_model_without_hints_keeps_the_given_points_only(tmp_path):
    from conftest import tiny_model

    from kpstudio.core.skeleton import Skeleton
    from kpstudio.ml.model_file import save_model_file

    path = save_model_file(tmp_path / "m.kpmodel", tiny_model(), arch="default",
                           params={"width": 8, "decoder": 16}, input_size=64,
                           skeleton=Skeleton.create(["a", "b", "c"]))  # fmt: skip
    predictor = Predictor.from_file(path)
    image = np.zeros((48, 64, 3), np.uint8)
    pred = predictor.predict_with_hints(image, {"b": (5.0, 6.0)})
    assert not predictor.takes_hints
    assert tuple(pred.xy[1]) == (5.0, 6.0)
    assert np.allclose(pred.xy[[0, 2]], predictor.predict_array(image).xy[[0, 2]])
