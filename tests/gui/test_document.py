"""The Document: the one mutator and notifier of labels; one user action, one transaction."""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from conftest import REPO  # noqa: E402

from kpstudio.core.labelset import Visibility  # noqa: E402
from kpstudio.core.point_state import PointState  # noqa: E402
from kpstudio.core.project import Project  # noqa: E402
from kpstudio.core.skeleton import Skeleton  # noqa: E402
from kpstudio.gui.document import Document  # noqa: E402

K = 68  # a face: 68 landmarks


@pytest.fixture
def doc(qtbot, tmp_path):
    project = Project.create(tmp_path / "faces", Skeleton.create([f"p{i:02d}" for i in range(K)]))
    project.add_images([(tmp_path / "a.png", 640, 480, "a" * 64)])
    document = Document(project)
    yield document
    project.close()


def _count_commits(project) -> list[str]:
    commits: list[str] = []
    project._conn.set_trace_callback(
        lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None
    )
    return commits


def _accepted(doc) -> dict:
    rng = np.random.default_rng(0)
    return {(0, name): PointState(*rng.uniform(1, 400, 2), Visibility.VISIBLE,
                                  "prediction-accepted")
            for name in doc.skeleton.keypoints}  # fmt: skip


def test_accepting_a_68_point_prediction_and_its_undo_are_one_commit_each(doc, qtbot):
    image_id = doc.images()[0].id
    commits = _count_commits(doc.project)
    with qtbot.waitSignal(doc.labels_changed) as changed:
        doc.paste_points(image_id, _accepted(doc), "Accept prediction")
    assert changed.args == [image_id]
    assert len(commits) == 1 and len(doc.labels(image_id)) == K
    assert doc.image(image_id).status == "done"
    doc.undo_stack.undo()
    assert len(commits) == 2 and doc.labels(image_id) == []  # 68 deletions, one commit
    assert doc.image(image_id).status == "unlabeled"
    doc.undo_stack.redo()
    assert len(commits) == 3 and len(doc.labels(image_id)) == K


def test_an_edit_emits_labels_changed_once(doc, qtbot):
    image_id = doc.images()[0].id
    seen: list[int] = []
    doc.labels_changed.connect(seen.append)
    doc.place_point(image_id, "p00", 10.0, 20.0)
    doc.move_point(image_id, "p00", 11.0, 21.0)
    doc.delete_point(image_id, "p00")
    assert seen == [image_id] * 3
    assert doc.point(image_id, "p00") is None


def test_deleting_a_keypoint_and_its_undo_are_one_commit_each(doc):
    image_id = doc.images()[0].id
    doc.paste_points(image_id, _accepted(doc))
    commits = _count_commits(doc.project)
    smaller = Skeleton.create(list(doc.skeleton.keypoints[:-1]))
    doc.edit_skeleton(smaller)
    assert len(commits) == 1 and len(doc.labels(image_id)) == K - 1
    doc.undo_stack.undo()  # the skeleton and the lost label come back together
    assert len(commits) == 2 and len(doc.labels(image_id)) == K
    assert doc.point(image_id, doc.skeleton.keypoints[-1]) is not None


def test_a_refused_edit_writes_nothing_and_announces_nothing(doc, qtbot):
    image_id = doc.images()[0].id
    points = _accepted(doc)
    points[(0, "p05")] = PointState(9999.0, 1.0, Visibility.VISIBLE)  # outside the 640×480 image
    seen: list[int] = []
    doc.labels_changed.connect(seen.append)
    with pytest.raises(ValueError, match="p05"):
        doc.paste_points(image_id, points)
    assert doc.labels(image_id) == [] and seen == []


def test_worker_writes_are_announced_by_the_document(doc, qtbot):
    image_id = doc.images()[0].id
    with qtbot.waitSignal(doc.predictions_stored) as stored:
        doc.worker_stored_predictions("r1", {image_id: None})
    assert stored.args == ["r1", [image_id]]
    doc.place_point(image_id, "p00", 1.0, 1.0)
    with qtbot.waitSignals([doc.images_changed, doc.skeleton_changed]):
        doc.worker_imported()
    assert doc.undo_stack.count() == 0  # an import is not undoable: the stack starts afresh


def test_only_the_document_emits_its_change_signals():
    """Views re-read on the Document's word; no other module may speak for it."""
    pattern = re.compile(r"\.(labels_changed|skeleton_changed|images_changed|"
                         r"predictions_stored)\.emit\(")  # fmt: skip
    speakers = [p.relative_to(REPO).as_posix() for p in (REPO / "kpstudio").rglob("*.py")
                if pattern.search(p.read_text(encoding="utf-8"))]  # fmt: skip
    assert speakers == ["kpstudio/gui/document.py"]


def test_labeling_counts_ride_on_the_edit_commits(doc):
    """Accept (68 points), correct one by a drag, a placement: the counts are written in the
    edits' own transactions, no commit of their own."""
    from kpstudio.core.labeling_log import image_counts

    image_id = doc.images()[0].id
    doc.image_shown(image_id)
    commits = _count_commits(doc.project)
    doc.paste_points(image_id, _accepted(doc), "Accept prediction")
    doc.move_point(image_id, "p00", 10.0, 10.0)  # a drag of an accepted point: corrected
    doc.move_point(image_id, "p00", 11.0, 10.0)  # now a manual label: a click, no correction
    for step in range(3):  # one run of nudges is one click
        doc.move_point(image_id, "p01", 20.0 + step, 20.0, gesture=77)
    assert len(commits) == 6
    counts = image_counts(doc.project, image_id)
    assert (counts.accepted, counts.corrected, counts.clicks) == (K, 2, 3)
    doc.image_shown(None)  # leaving the image writes its time (nothing else pending: 1 commit)
    assert len(commits) == 7 and not doc.tally.has_pending()
