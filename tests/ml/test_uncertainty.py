"""Uncertainty: a model that agrees with itself under a flip is sure; one that does not is not."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kpstudio.core.prediction_files import Prediction
from kpstudio.core.skeleton import Skeleton
from kpstudio.ml.uncertainty import mirrored_back, score, uncertainty_scores


class FakePredictor:
    """Finds the brightest pixel; puts 'left' `offsets[0]` px and 'right' `offsets[1]` px from
    it along x, with a fixed confidence."""

    def __init__(self, offsets, confidence=0.9):
        self.skeleton = Skeleton.create(["left", "right"], flip_pairs=[("left", "right")])
        self.offsets, self.confidence = offsets, confidence

    def predict_arrays(self, images):
        out = []
        for image in images:
            gray = image.max(axis=2)
            r, c = np.unravel_index(int(np.argmax(gray)), gray.shape)
            xy = np.array([[c + 0.5 + dx, r + 0.5] for dx in self.offsets])
            out.append(Prediction(None, xy, np.full(2, self.confidence)))
        return out


@pytest.fixture
def image_files(tmp_path):
    paths = []
    for i, col in enumerate((20, 50, 70)):
        image = np.zeros((40, 100, 3), np.uint8)
        image[15, col] = 255
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), image)
        paths.append(path)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
    return [*paths, tmp_path / "broken.png"]


def test_a_flip_consistent_model_is_only_as_unsure_as_its_confidence(image_files):
    scores = uncertainty_scores(FakePredictor((-5, 5)), image_files)
    assert np.allclose(scores[:3], 0.5 * 0.1)
    assert np.isnan(scores[3])


def test_a_model_that_disagrees_with_its_mirror_image_is_unsure(image_files):
    sure = uncertainty_scores(FakePredictor((-5, 5)), image_files[:3])
    unsure = uncertainty_scores(FakePredictor((3, 10)), image_files[:3])
    assert (unsure > sure + 0.1).all()
    wilder = uncertainty_scores(FakePredictor((3, 40)), image_files[:3])
    assert (wilder > unsure).all() and (wilder < 1).all()  # ranked, never tied at a cap


def test_mirrored_back_swaps_pairs_and_reflects_x():
    pred = Prediction(None, np.array([[10.0, 1.0], [30.0, 2.0]]), np.ones(2))
    back = mirrored_back(pred, 100, [1, 0])
    assert back.tolist() == [[70.0, 2.0], [90.0, 1.0]]
    nan = Prediction(None, np.full((2, 2), np.nan), np.zeros(2))
    assert score(nan, nan, 100, 40, [1, 0]) == 1.0
