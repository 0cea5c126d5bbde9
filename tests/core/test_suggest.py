"""Which image next: k-center covers clusters, uncertainty leads with a model, features cached."""

from __future__ import annotations

import numpy as np
import pytest

from kpstudio.core.image_features import DIM, cache_path, features_of, image_features
from kpstudio.core.project import Project
from kpstudio.core.skeleton import Skeleton
from kpstudio.core.suggest import Inputs, choose, combine, k_center


def _clusters(per: int = 10, centers: int = 4, seed: int = 0):
    """`centers` tight clusters of `per` points each (near-duplicate video frames)."""
    rng = np.random.default_rng(seed)
    middle = rng.normal(0, 10, (centers, 8))
    feats = np.concatenate([c + rng.normal(0, 0.1, (per, 8)) for c in middle])
    return feats, np.repeat(np.arange(centers), per)


def test_k_center_picks_one_image_per_cluster_first():
    feats, cluster = _clusters()
    picks = k_center(feats, np.zeros(len(feats), bool), 4)
    assert sorted(cluster[picks]) == [0, 1, 2, 3]


def test_k_center_avoids_the_clusters_already_labeled():
    feats, cluster = _clusters()
    labeled = np.isin(cluster, [0, 2]) & (np.arange(len(feats)) % 10 == 0)
    picks = k_center(feats, labeled, 2)
    assert sorted(cluster[picks]) == [1, 3]
    assert not labeled[picks].any() and len(set(picks)) == 2


def test_k_center_skips_unreadable_rows_and_stops_when_candidates_run_out():
    feats, _ = _clusters(per=2, centers=2)
    feats[1] = np.nan
    picks = k_center(feats, np.zeros(len(feats), bool), 10)
    assert sorted(picks) == [0, 2, 3]


def test_with_a_model_uncertain_images_lead_but_not_as_near_duplicates():
    feats, cluster = _clusters()
    labeled = np.zeros(len(feats), bool)
    uncertainty = np.where(cluster == 1, 0.9, 0.1)
    uncertainty[cluster == 3] = 0.8
    picks = combine(feats, labeled, 2, uncertainty)
    # Pure uncertainty would pick two frames of cluster 1: the distance term spreads them.
    assert sorted(cluster[picks]) == [1, 3]


def test_features_tell_scenes_apart_and_are_cached(tmp_path, monkeypatch):
    import cv2

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    other = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    paths = []
    for name, image in (("a", base), ("b", np.clip(base.astype(int) + 3, 0, 255)), ("c", other)):
        path = tmp_path / f"{name}.png"
        cv2.imwrite(str(path), image[:, :, ::-1].astype(np.uint8))
        paths.append(path)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    paths.append(tmp_path / "bad.png")
    cache = cache_path(tmp_path)
    feats = image_features([1, 2, 3, 4], paths, cache)
    assert feats.shape == (4, DIM) and np.isnan(feats[3]).all()
    near, far = np.linalg.norm(feats[0] - feats[1]), np.linalg.norm(feats[0] - feats[2])
    assert near < 0.2 * far
    assert np.allclose(features_of(base), feats[0])

    import kpstudio.core.image_features as module

    def no_reading(path):
        raise AssertionError(f"{path} was read again")

    monkeypatch.setattr(module, "read_image", lambda p: no_reading(p) if "bad" not in str(p)
                        else (_ for _ in ()).throw(OSError("bad")))  # fmt: skip
    again = image_features([1, 2, 3, 4], paths, cache)
    assert np.array_equal(again[:3], feats[:3])


def test_choose_on_a_project_suggests_unlabeled_images_only(tmp_path):
    import cv2

    project = Project.create(tmp_path / "p", Skeleton.create(["a"]))
    rng = np.random.default_rng(1)
    entries = []
    for i in range(6):
        path = tmp_path / "p" / f"{i}.png"
        cv2.imwrite(str(path), rng.integers(0, 255, (20, 30, 3), dtype=np.uint8))
        entries.append((path, 30, 20, f"{i}" * 64))
    ids = project.add_images(entries)
    project.set_label(ids[0], "a", 5.0, 5.0)
    inputs = Inputs.read(project)
    feats = image_features(inputs.ids, inputs.paths)
    picks = choose(inputs, 3, feats)
    assert len(picks) == 3 and ids[0] not in {s.image_id for s in picks}
    assert all(s.uncertainty is None and s.distance > 0 for s in picks)
    scored = choose(inputs, 2, feats, scorer=lambda paths: np.linspace(0, 1, len(paths)))
    assert len(scored) == 2 and all(s.uncertainty is not None for s in scored)
    project.close()
    with pytest.raises(ValueError):
        features_of(np.zeros((0, 0), np.uint8))
