"""Opening a folder whose project.kpstudio is not ours: named "not a kpstudio project", and the
file is never written to (issue 11)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest
from conftest import time_limit

from kpstudio.core.project import DB_NAME, LOCK_NAME, Project, ProjectError
from kpstudio.core.skeleton import Skeleton


def foreign_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.execute("INSERT INTO contacts VALUES ('someone')")
    conn.commit()
    conn.close()


FOREIGN = {
    "empty": lambda p: p.write_bytes(b""),
    "text": lambda p: p.write_text("my notes, not a database\n"),
    "sqlite-of-another-program": foreign_sqlite,
    "sqlite-header-only": lambda p: p.write_bytes(b"SQLite format 3\x00" + bytes(84)),
}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", FOREIGN)
def test_a_foreign_project_file_is_named_and_never_written(tmp_path, kind):
    folder = tmp_path / "p"
    folder.mkdir()
    FOREIGN[kind](folder / DB_NAME)
    before = digest(folder / DB_NAME)
    for attempt in (
        lambda: Project.open(folder),
        lambda: Project.open(folder, readonly=True),
        lambda: Project.create(folder, Skeleton.create(["a"])),
    ):
        with pytest.raises(ProjectError, match="not a kpstudio project") as err:
            attempt()
        assert str(folder / DB_NAME) in str(err.value)
        assert "older schema" not in str(err.value)
    assert digest(folder / DB_NAME) == before
    assert sorted(os.listdir(folder)) == [DB_NAME]  # no -wal/-shm, no lock file


def test_a_named_pipe_as_the_project_file_does_not_hang(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    os.mkfifo(folder / DB_NAME)
    with time_limit(20), pytest.raises(ProjectError, match="named pipe.*not a kpstudio project"):
        Project.open(folder)


def test_our_own_projects_still_open(tmp_path):
    Project.create(tmp_path / "p", Skeleton.create(["a", "b"])).close()
    with Project.open(tmp_path / "p") as project:
        assert project.skeleton.keypoints == ("a", "b")
    with Project.open(tmp_path / "p", readonly=True) as project:
        assert project.counts()["images"] == 0
    assert not (tmp_path / "p" / LOCK_NAME).read_text()  # released
