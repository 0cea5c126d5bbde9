"""The project store: edits persist at once, bad edits change nothing, lock, migration, moves."""

from __future__ import annotations

import math
import shutil
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from kpstudio.core.labelset import Visibility
from kpstudio.core.project import DB_NAME, Project, ProjectError, ProjectLockedError
from kpstudio.core.schema import SCHEMA_VERSION, migrate
from kpstudio.core.skeleton import Skeleton

SKELETON = Skeleton.create(["nose", "left_ear", "right_ear"], [("nose", "left_ear")],
                           [("left_ear", "right_ear")])  # fmt: skip


@pytest.fixture
def project(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    p = Project.create(tmp_path / "proj", SKELETON)
    p.add_images([(images / f"im{i}.png", 640, 480, f"hash{i}") for i in range(3)])
    yield p
    p.close()


def test_edit_is_visible_to_a_fresh_reader_at_once(project):
    image = project.images()[0]
    project.set_label(image.id, "nose", 10.25, 20.5)
    project.set_label(image.id, "left_ear", 11, 21, Visibility.OCCLUDED)
    # A second connection (as another process would) sees the committed edit immediately.
    with Project.open(project.folder, readonly=True) as reader:
        labels = {lab.keypoint: lab for lab in reader.labels(image.id)}
    assert (labels["nose"].x, labels["nose"].y) == (10.25, 20.5)
    assert labels["left_ear"].visibility == Visibility.OCCLUDED
    assert labels["nose"].source == "manual"
    assert reader.readonly


def test_status_follows_labels(project):
    image = project.images()[0]
    assert image.status == "unlabeled"
    project.set_label(image.id, "nose", 1, 1)
    assert project.image(image.id).status == "partial"
    project.set_label(image.id, "left_ear", 2, 2)
    project.set_label(image.id, "right_ear", None, None, Visibility.ABSENT)
    assert project.image(image.id).status == "done"
    project.delete_label(image.id, "nose")
    assert project.image(image.id).status == "partial"
    counts = project.counts()
    assert counts["images"] == 3 and counts["labeled_images"] == 1
    assert counts["labeled_points"] == 1


@pytest.mark.parametrize(
    "x, y, vis, message",
    [
        (math.nan, 3.0, 2, "not finite"),
        (3.0, math.inf, 2, "not finite"),
        (700.0, 3.0, 2, "outside the 640×480 image"),
        (-0.1, 3.0, 2, "outside"),
        ("abc", 3.0, 2, "not a number"),
        (1.0, 1.0, 7, "visibility"),
    ],
)
def test_bad_edit_is_refused_and_changes_nothing(project, x, y, vis, message):
    image = project.images()[0]
    project.set_label(image.id, "nose", 5, 5)
    with pytest.raises(ProjectError, match=message) as info:
        project.set_labels(image.id, [("left_ear", 9, 9, 2), ("nose", x, y, vis)])
    assert "im0.png" in str(info.value) or "visibility" in message
    labels = project.labels(image.id)
    assert [(lab.keypoint, lab.x, lab.y) for lab in labels] == [("nose", 5.0, 5.0)]


def test_unknown_keypoint_is_named(project):
    with pytest.raises(ProjectError, match="unknown keypoint 'tail'.*nose, left_ear, right_ear"):
        project.set_label(project.images()[0].id, "tail", 1, 1)


def test_second_writer_gets_a_clear_lock_message(project):
    code = textwrap.dedent(f"""
        import sys
        from kpstudio.core.project import Project
        try:
            Project.open({str(project.folder)!r})
        except Exception as exc:
            print(type(exc).__name__, exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    import os
    import socket

    assert out.startswith("ProjectLockedError")
    assert f"is open in process {os.getpid()} on host {socket.gethostname()}" in out
    # Readers need no lock.
    with Project.open(project.folder, readonly=True) as reader:
        assert reader.counts()["images"] == 3


def test_stale_lock_of_a_killed_process_is_taken_over(tmp_path):
    Project.create(tmp_path / "p", SKELETON).close()
    code = textwrap.dedent(f"""
        import os, signal
        from kpstudio.core.project import Project
        Project.open({str(tmp_path / "p")!r})
        print("held", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "held" and result.returncode == -9
    with Project.open(tmp_path / "p") as p:  # no error: the dead holder's lock is stale
        assert p._lock.stale_holder is not None
        assert p._lock.stale_holder["pid"] != 0


def test_same_process_cannot_open_twice_for_writing(project):
    with pytest.raises(ProjectLockedError, match="is open in process"):
        Project.open(project.folder)


def test_a_worker_thread_writes_through_its_own_handle_under_the_same_lock(project):
    import threading

    image = project.images()[0]
    errors = []

    def work():  # an SQLite connection belongs to its thread: the handle is made here
        try:
            with project.worker_handle() as store:
                store.set_label(image.id, "nose", 3.5, 4.5)
                store.set_skeleton(Skeleton.create([*SKELETON.keypoints, "tail"]))
        except Exception as exc:  # surfaced in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert not errors
    assert [(lab.x, lab.y) for lab in project.labels(image.id)] == [(3.5, 4.5)]
    # This handle had the old skeleton cached; it sees the worker's.
    assert project.skeleton.keypoints[-1] == "tail"
    project.set_label(image.id, "tail", 1.0, 2.0)
    # Closing the worker's handle left the project locked by the first one.
    with pytest.raises(ProjectLockedError):
        Project.open(project.folder)
    with Project.open(project.folder, readonly=True) as reader:
        with pytest.raises(ProjectError, match="read-only"):
            reader.worker_handle()


def test_moving_the_folder_with_its_images_keeps_it_valid(tmp_path):
    base = tmp_path / "a"
    (base / "imgs").mkdir(parents=True)
    (base / "imgs" / "x.png").write_bytes(b"not really an image")
    with Project.create(base / "proj", SKELETON) as p:
        (image_id,) = p.add_images([(base / "imgs" / "x.png", 10, 10, "h")])
        p.set_label(image_id, "nose", 3, 4)
        assert p.image(image_id).path == "../imgs/x.png"
    shutil.move(base, tmp_path / "b")
    with Project.open(tmp_path / "b" / "proj") as p:
        assert p.image_path(image_id) == (tmp_path / "b" / "imgs" / "x.png").resolve()
        assert p.image_path(image_id).is_file()
        assert [(lab.x, lab.y) for lab in p.labels(image_id)] == [(3.0, 4.0)]


def test_skeleton_rename_reorder_delete_keeps_labels_by_identity(project):
    image = project.images()[0]
    project.set_label(image.id, "nose", 1, 2)
    project.set_label(image.id, "left_ear", 3, 4)
    new = Skeleton.create(["ear_l", "snout"])  # right_ear dropped, two renamed, reordered
    deleted = project.set_skeleton(new, renames={"nose": "snout", "left_ear": "ear_l"})
    assert deleted == 0
    labels = {lab.keypoint: (lab.x, lab.y) for lab in project.labels(image.id)}
    assert labels == {"ear_l": (3.0, 4.0), "snout": (1.0, 2.0)}
    assert project.image(image.id).status == "done"  # both remaining keypoints labeled
    assert project.set_skeleton(Skeleton.create(["snout"])) == 1


def test_older_schema_is_migrated_with_a_backup(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    conn = sqlite3.connect(folder / DB_NAME, isolation_level=None)
    migrate(conn, target=1)  # a project as version 1 of kpstudio wrote it
    conn.execute("INSERT INTO keypoints VALUES (1, 'nose', 0, '#ff0000')")
    conn.execute("INSERT INTO images VALUES (1, 'a.png', 10, 10, 'h', 'train', 'unlabeled', 0)")
    conn.execute("INSERT INTO labels VALUES (1, 0, 1, 2.5, 3.5, 2, 'manual', 0)")
    conn.close()
    with Project.open(folder) as p:
        assert p.schema_version == SCHEMA_VERSION
        assert p.labels(1)[0].x == 2.5
        tables = {r[0] for r in p._conn.execute("SELECT name FROM sqlite_master")}
        assert {"runs", "predictions"} <= tables
    assert (folder / f"{DB_NAME}.v1.bak").is_file()


def test_newer_schema_and_foreign_files_are_refused(tmp_path):
    folder = tmp_path / "new"
    Project.create(folder, SKELETON).close()
    conn = sqlite3.connect(folder / DB_NAME)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(ProjectError, match="newer kpstudio"):
        Project.open(folder)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ProjectError, match="not a readable kpstudio project"):
        Project.open(junk)
    with pytest.raises(ProjectError, match="not a kpstudio project"):
        Project.open(tmp_path / "nothing-here")
    # The failed open released its lock: trying again gives the same clear error, not a lock one.
    with pytest.raises(ProjectError, match="not a readable kpstudio project"):
        Project.open(junk)


def test_full_disk_rolls_back_and_says_so(project):
    image = project.images()[1]
    project.set_label(image.id, "nose", 1, 1)
    page_count = project._conn.execute("PRAGMA page_count").fetchone()[0]
    project._conn.execute(f"PRAGMA max_page_count = {page_count}")  # the disk is now "full"
    rows = [(f"/x/{i}.png", 10, 10, f"h{i}") for i in range(5000)]
    with pytest.raises(ProjectError, match="disk .* is full; the change was not saved"):
        project.add_images(rows)
    project._conn.execute("PRAGMA max_page_count = 1073741823")
    assert project.counts()["images"] == 3
    assert project.labels(image.id)[0].x == 1.0
    assert project._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_splits_are_deterministic_from_the_seed(tmp_path):
    def splits(seed):
        with Project.create(tmp_path / f"s{seed}-{len(list(tmp_path.iterdir()))}", SKELETON,
                            seed=seed) as p:  # fmt: skip
            p.add_images([(tmp_path / f"{i}.png", 5, 5, f"hash{i}") for i in range(200)])
            return [im.split for im in p.images()]

    a, b, c = splits(1), splits(1), splits(2)
    assert a == b and a != c
    assert 20 <= a.count("val") <= 60  # about the default 20 %


def test_bulk_writes_go_in_short_transactions_sized_by_time(project, monkeypatch):
    """write_in_turns: every item written, in chunks whose size follows the time budget."""
    image_ids = [r.id for r in project.images()] * 40  # 120 small writes
    commits, chunks = [], []
    project._conn.set_trace_callback(
        lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None
    )

    def write(conn, chunk):
        chunks.append(len(chunk))
        conn.executemany("UPDATE images SET split = split WHERE id = ?", [(i,) for i in chunk])

    project.write_in_turns(image_ids, write, budget_s=0.0)  # no time at all: one by one
    assert chunks == [1] * 120 and len(commits) == 120
    chunks.clear()
    project.write_in_turns(image_ids, write, budget_s=60.0)  # all the time: doubling chunks
    assert chunks == [1, 2, 4, 8, 16, 32, 57] and sum(chunks) == 120


def test_bulk_writes_leave_the_wal_checkpointed_and_full_sync_back(project):
    # A worker's chunks commit without an fsync each and checkpoint outside the write turn
    # (SQLite's automatic checkpoint ran inside a chunk and held a user's edit for 339 ms):
    # when write_in_turns returns, everything is in the database file and FULL sync is back.
    worker = project.worker_handle()
    try:
        assert worker._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        ids = [r.id for r in project.images()] * 200

        def write(conn, chunk):
            conn.executemany("UPDATE images SET split = split WHERE id = ?", [(i,) for i in chunk])

        worker.write_in_turns(ids, write, budget_s=0.0)
        assert worker._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        busy, log, done = worker._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0 and log == done  # nothing left in the WAL that is not in the file
    finally:
        worker.close()


def test_a_worker_adds_images_in_short_transactions_with_the_same_result(project, monkeypatch):
    import kpstudio.core.project as store_module

    monkeypatch.setattr(store_module, "WORKER_TURN_S", 0.0)  # one row per transaction
    commits = []
    project._conn.set_trace_callback(
        lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None
    )
    folder = project.folder.parent / "images"
    known = project.images()[0]
    entries = [(folder / f"new{i}.png", 64, 48, f"new{i}") for i in range(4)]
    ids = project.add_images([*entries, (folder / "im0.png", 640, 480, "hash0")], in_turns=True)
    assert len(commits) == 5 and ids[-1] == known.id  # a known path keeps its row
    assert [project.image(i).path for i in ids[:4]] == [f"../images/new{i}.png" for i in range(4)]
