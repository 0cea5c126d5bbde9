"""The labeling log: counts added per image, idle gaps capped, speed summarised."""

from __future__ import annotations

import sqlite3

import pytest

from kpstudio.core.labeling_log import (
    IDLE_CAP_S,
    LabelingTally,
    image_counts,
    labeling_speed,
)
from kpstudio.core.labelset import Visibility
from kpstudio.core.point_state import PointState
from kpstudio.core.project import Project
from kpstudio.core.schema import migrate, schema_version
from kpstudio.core.skeleton import Skeleton


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def project(tmp_path):
    p = Project.create(tmp_path / "p", Skeleton.create(["a", "b"]))
    p.add_images([(tmp_path / f"{i}.png", 100, 100, str(i) * 64) for i in range(3)])
    yield p
    p.close()


def _flush(project, tally):
    with project.transaction() as conn:
        tally.write_pending(conn)
    tally.forget_pending()


def test_seconds_go_to_the_image_shown_with_idle_gaps_capped(project):
    a, b, _ = (r.id for r in project.images())
    clock = Clock()
    tally = LabelingTally(clock)
    tally.show(a)
    clock.t += 5
    tally.click(a)
    clock.t += 3600  # lunch: counts as the cap only
    tally.click(a)
    clock.t += 2
    tally.show(b)
    clock.t += 4
    tally.click(b)
    _flush(project, tally)
    assert image_counts(project, a).seconds == pytest.approx(5 + IDLE_CAP_S + 2)
    assert image_counts(project, a).clicks == 2
    assert image_counts(project, b).seconds == pytest.approx(4)
    assert not tally.has_pending()


def test_counts_add_up_over_flushes_and_a_rolled_back_flush_keeps_them(project):
    a = project.images()[0].id
    tally = LabelingTally(Clock())
    tally.accept(a, 2)
    tally.correct(a)
    _flush(project, tally)
    tally.click(a)
    with pytest.raises(RuntimeError):
        with project.transaction() as conn:
            tally.write_pending(conn)
            raise RuntimeError("the edit was refused")
    assert tally.has_pending()  # still there for the next edit
    _flush(project, tally)
    counts = image_counts(project, a)
    assert (counts.clicks, counts.accepted, counts.corrected) == (1, 2, 1)


def test_speed_covers_done_images_and_the_corrected_share(project):
    a, b, c = (r.id for r in project.images())
    full = {(0, "a"): PointState(1, 1, Visibility.VISIBLE),
            (0, "b"): PointState(2, 2, Visibility.VISIBLE)}  # fmt: skip
    project.write_points(a, full)
    project.write_points(b, full)
    clock = Clock()
    tally = LabelingTally(clock)
    for image, seconds, clicks in ((a, 10, 2), (b, 30, 4), (c, 99, 1)):  # c is not done
        tally.show(image)
        clock.t += seconds
        tally.click(image, clicks)
    tally.accept(b, 4)
    tally.correct(b)
    tally.show(None)
    _flush(project, tally)
    speed = labeling_speed(project)
    assert speed.images_labeled == 2
    assert speed.median_seconds == pytest.approx(20)
    assert speed.clicks_per_image == pytest.approx(3)
    assert speed.corrected_share == pytest.approx(0.25)
    assert "2 image(s) labeled" in speed.sentence() and "25%" in speed.sentence()


def test_nothing_recorded_reads_as_such(project):
    speed = labeling_speed(project)
    assert speed.images_labeled == 0 and speed.median_seconds is None
    assert speed.sentence() == "labeling speed: nothing recorded yet"


def test_a_version_4_store_migrates_to_the_log(tmp_path):
    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    migrate(conn, 4)
    assert schema_version(conn) == 4
    migrate(conn)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "labeling_log" in tables and schema_version(conn) == 5
    conn.close()
