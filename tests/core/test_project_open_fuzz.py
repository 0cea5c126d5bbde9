"""Fuzzing the project opener (issue 11): a real project's store with flipped bytes, cut short,
or edited behind kpstudio's back. `kpstudio info` on it succeeds or exits 1 with a message
naming the project (never a traceback), and a refused store is not written to."""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import shutil
import sqlite3
from pathlib import Path

import pytest
from fuzzing import _SPECIAL, CI_SETTINGS, Outcome, mutate_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from kpstudio.cli import main
from kpstudio.core.formats import read_labels
from kpstudio.core.project import DB_NAME, Project, ProjectError
from kpstudio.core.project_transfer import import_labelset

CI_EXAMPLES = 80

# Edits another program (or a careless hand in an SQLite browser) could make to a store.
_SQL_EDITS = [
    "PRAGMA user_version = {int}",
    "DROP TABLE {table}",
    "DELETE FROM {table}",
    "ALTER TABLE {table} RENAME TO renamed",
    "UPDATE keypoints SET name = {value}",
    "UPDATE keypoints SET position = {value}",
    "UPDATE keypoints SET color = {value}",
    "UPDATE meta SET value = {value}",
    "UPDATE images SET width = {value}",
    "UPDATE images SET path = {value}",
    "UPDATE labels SET x = {value}",
    "UPDATE labels SET visibility = {value}",
    "INSERT INTO edges VALUES ({int}, {int})",
    "INSERT INTO flip_pairs VALUES ({int}, {int})",
    "INSERT INTO keypoints(name, position, color) VALUES ({value}, {int}, '#ffffff')",
]
_TABLES = ["meta", "keypoints", "edges", "flip_pairs", "images", "labels", "runs", "predictions"]


class ProjectSeed:
    """A project holding a real peer file's labels, closed; cases are edited copies of it."""

    def __init__(self, work: Path, coco: Path):
        self.work = work
        self.folder = work / "seed"
        with Project.create(self.folder) as project:
            import_labelset(project, read_labels("coco", coco))
        self.data = (self.folder / DB_NAME).read_bytes()
        self.counter = itertools.count()

    def case(self, draw) -> tuple[bytes, list[str]]:
        """(store bytes to start from, SQL edits to apply to it)."""
        if draw(st.booleans()):
            return self._bytes(draw), []
        edits = []
        for _ in range(draw(st.integers(1, 3))):
            template = draw(st.sampled_from(_SQL_EDITS))
            value = draw(st.sampled_from(_SPECIAL[:40]))
            literal = "NULL" if value is None else _literal(value)
            edits.append(template.format(table=draw(st.sampled_from(_TABLES)), value=literal,
                                         int=draw(st.integers(-3, 2**63 - 1))))  # fmt: skip
        return self.data, edits

    def _bytes(self, draw) -> bytes:
        if draw(st.booleans()):  # the 100-byte header, where SQLite keeps its own bookkeeping
            head = mutate_bytes(draw, self.data[:100])
            return head + self.data[100:]
        return mutate_bytes(draw, self.data)

    def run(self, outcome: Outcome, data: bytes, edits: list[str], strict: bool = True) -> None:
        folder = self.work / f"case{next(self.counter)}"
        folder.mkdir()
        db = folder / DB_NAME
        db.write_bytes(data)
        if edits:
            conn = sqlite3.connect(db, isolation_level=None)
            conn.execute("PRAGMA ignore_check_constraints = ON")
            for sql in edits:
                try:
                    conn.execute(sql)
                except sqlite3.Error:
                    pass  # an edit that does not apply is simply not made
            conn.close()

        def attempt():
            # `kpstudio info` opens the project for reading (Project.open, the skeleton, the
            # counts); a damaged page deep in the store only shows when it is read, so the
            # property is the user's: a result, or exit 1 with one message naming the project.
            err = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                code = main(["info", str(folder)])
            if code != 0:
                assert code == 1 and "Traceback" not in err.getvalue()
                raise ProjectError(err.getvalue())

        outcome.check(attempt, [folder], lambda: hashlib.sha256(db.read_bytes()).hexdigest(),
                      (ProjectError,), strict)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(float(value)) if isinstance(value, float) else str(value)
    text = str(value).encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return "'" + text.replace("'", "''").replace("\x00", "") + "'"


@pytest.fixture(scope="module")
def seed(shared_dir, tmp_path_factory) -> ProjectSeed:
    coco = shared_dir / "peer-files" / "coco" / "mmpose-fly" / "test_fly.json"
    if not coco.is_file():
        pytest.skip(f"{coco} is not present")
    return ProjectSeed(tmp_path_factory.mktemp("project-fuzz"), coco)


def test_damaged_or_edited_stores_open_or_are_refused_cleanly(seed):
    outcome = Outcome("project file")

    @settings(CI_SETTINGS, max_examples=CI_EXAMPLES)
    @given(st.data())
    def case(data):
        seed.run(outcome, *seed.case(data.draw))

    case()
    assert outcome.counts["cases"] >= CI_EXAMPLES and outcome.counts["refused"] > 0
