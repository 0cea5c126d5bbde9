"""The labels part of the store: one transaction per change, checked in full first."""

from __future__ import annotations

import math

import pytest

from kpstudio.core.labelset import Visibility
from kpstudio.core.point_state import PointState
from kpstudio.core.project import Project, ProjectError
from kpstudio.core.skeleton import Skeleton


@pytest.fixture
def project(tmp_path):
    p = Project.create(tmp_path / "proj", Skeleton.create(["nose", "tail", "paw"]))
    p.add_images([(tmp_path / "a.png", 100, 50, "a" * 64)])
    yield p
    p.close()


def test_sets_and_deletes_of_several_instances_are_one_commit(project):
    image_id = project.images()[0].id
    project.set_label(image_id, "paw", 5.0, 5.0)
    commits = []
    project._conn.set_trace_callback(
        lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None
    )
    project.write_points(image_id, {
        (0, "nose"): PointState(1.0, 2.0, Visibility.VISIBLE),
        (0, "tail"): PointState.absent(),
        (0, "paw"): None,
        (1, "nose"): PointState(3.0, 4.0, Visibility.OCCLUDED, "prediction-accepted"),
    })  # fmt: skip
    assert len(commits) == 1
    assert project.point(image_id, "nose") == PointState(1.0, 2.0, Visibility.VISIBLE)
    tail = project.point(image_id, "tail")
    assert tail.visibility == Visibility.ABSENT and math.isnan(tail.x)
    assert project.point(image_id, "paw") is None
    assert project.point(image_id, "nose", 1).source == "prediction-accepted"
    assert project.image(image_id).status == "partial"  # instance 0 has no paw decision


def test_one_bad_point_writes_none_of_the_others(project):
    image_id = project.images()[0].id
    bad = {(0, "nose"): PointState(1.0, 2.0, Visibility.VISIBLE),
           (0, "tail"): PointState(101.0, 2.0, Visibility.VISIBLE)}  # fmt: skip
    with pytest.raises(ProjectError, match="tail"):
        project.write_points(image_id, bad)
    with pytest.raises(ProjectError, match="source"):
        project.write_points(image_id, {(0, "nose"): PointState(1, 2, Visibility.VISIBLE, "x")})
    assert project.labels(image_id) == [] and project.image(image_id).status == "unlabeled"
