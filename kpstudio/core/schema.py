"""The project database schema and its migrations.

The schema version lives in SQLite's `PRAGMA user_version`. MIGRATIONS[i] turns version i into
version i + 1; a new project runs them all. Each migration runs in one transaction together
with the version bump, so a crash mid-migration leaves the old version intact.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from kpstudio.core.regular_files import FileRefused, open_regular

_V1 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE keypoints (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    position INTEGER NOT NULL,
    color    TEXT NOT NULL
);
CREATE TABLE edges (
    a INTEGER NOT NULL REFERENCES keypoints(id) ON DELETE CASCADE,
    b INTEGER NOT NULL REFERENCES keypoints(id) ON DELETE CASCADE,
    PRIMARY KEY (a, b)
);
CREATE TABLE flip_pairs (
    a INTEGER NOT NULL REFERENCES keypoints(id) ON DELETE CASCADE,
    b INTEGER NOT NULL REFERENCES keypoints(id) ON DELETE CASCADE,
    PRIMARY KEY (a, b)
);
CREATE TABLE images (
    id     INTEGER PRIMARY KEY,
    path   TEXT NOT NULL UNIQUE,          -- relative to the project folder, POSIX separators
    width  INTEGER NOT NULL CHECK (width > 0),
    height INTEGER NOT NULL CHECK (height > 0),
    sha256 TEXT NOT NULL,
    split  TEXT NOT NULL CHECK (split IN ('train', 'val')),
    status TEXT NOT NULL DEFAULT 'unlabeled'
           CHECK (status IN ('unlabeled', 'partial', 'done', 'predicted', 'unreadable')),
    added  REAL NOT NULL
);
CREATE TABLE labels (
    image_id    INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    instance    INTEGER NOT NULL CHECK (instance >= 0),
    keypoint_id INTEGER NOT NULL REFERENCES keypoints(id) ON DELETE CASCADE,
    x           REAL,
    y           REAL,
    visibility  INTEGER NOT NULL CHECK (visibility IN (0, 1, 2)),
    source      TEXT NOT NULL CHECK (source IN ('manual', 'prediction-accepted')),
    updated     REAL NOT NULL,
    -- an absent point has no position; a labeled one always has one
    CHECK ((visibility = 0 AND x IS NULL AND y IS NULL)
        OR (visibility > 0 AND x IS NOT NULL AND y IS NOT NULL)),
    PRIMARY KEY (image_id, instance, keypoint_id)
) WITHOUT ROWID;
CREATE INDEX images_status ON images(status);
"""

# Version 2: training runs and their predictions, ready for the training engine.
_V2 = """
CREATE TABLE runs (
    id         TEXT PRIMARY KEY,
    created    REAL NOT NULL,
    arch       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('running', 'finished', 'stopped', 'failed')),
    config     TEXT NOT NULL DEFAULT '{}',   -- JSON
    history    TEXT NOT NULL DEFAULT '[]',   -- JSON, one entry per epoch
    metrics    TEXT NOT NULL DEFAULT '{}',   -- JSON
    model_path TEXT                          -- relative to the project folder
);
CREATE TABLE predictions (
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    image_id    INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    instance    INTEGER NOT NULL,
    keypoint_id INTEGER NOT NULL REFERENCES keypoints(id) ON DELETE CASCADE,
    x           REAL NOT NULL,
    y           REAL NOT NULL,
    confidence  REAL NOT NULL,
    PRIMARY KEY (run_id, image_id, instance, keypoint_id)
) WITHOUT ROWID;
"""

# Version 3: an image's status looks up its predictions by image (see LabelStore.refresh_status).
_V3 = """
CREATE INDEX predictions_image ON predictions(image_id);
"""

# Version 4: the process training a run (pid, host), so that a run left "running" by a process
# that died reads as interrupted (see kpstudio.core.runs).
_V4 = """
ALTER TABLE runs ADD COLUMN pid INTEGER;
ALTER TABLE runs ADD COLUMN host TEXT;
"""

# Version 5: what labeling each image cost (kpstudio.core.labeling_log): seconds the user spent
# on it, clicks, prediction points accepted and accepted points corrected later. One row per
# image that was worked on; counters only ever add up.
_V5 = """
CREATE TABLE labeling_log (
    image_id  INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    seconds   REAL NOT NULL DEFAULT 0 CHECK (seconds >= 0),
    clicks    INTEGER NOT NULL DEFAULT 0 CHECK (clicks >= 0),
    accepted  INTEGER NOT NULL DEFAULT 0 CHECK (accepted >= 0),
    corrected INTEGER NOT NULL DEFAULT 0 CHECK (corrected >= 0),
    updated   REAL NOT NULL
);
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5)
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaError(RuntimeError):
    """The database is not a kpstudio project this version can open."""


class NotAProjectError(SchemaError):
    """The file is not a kpstudio project store at all; the message names it. Such a file is
    never written to: it may be someone else's data."""


SQLITE_MAGIC = b"SQLite format 3\x00"
_OWN_TABLES = frozenset({"meta", "keypoints", "images", "labels"})
_UNTOUCHED = "kpstudio leaves it untouched"
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26  # SQLite's primary result codes


def check_project_file(db: Path) -> None:
    """Refuse, before SQLite opens it, a file that cannot be a project: not a regular file,
    empty, or without SQLite's header. (SQLite would take an empty file for a new database and
    write one into it.)"""
    try:
        with open_regular(db) as fp:
            head = fp.read(len(SQLITE_MAGIC))
    except FileRefused as exc:
        raise NotAProjectError(f"{exc}; it is not a kpstudio project") from None
    if not head:
        raise NotAProjectError(
            f"{db} is empty (0 bytes), not a kpstudio project; {_UNTOUCHED} (remove it to "
            "create a project here)"
        )
    if head != SQLITE_MAGIC:
        raise NotAProjectError(
            f"{db} is not a kpstudio project: it is not a readable kpstudio project file (not "
            f"an SQLite database); {_UNTOUCHED}"
        )


def check_project_database(db: Path) -> None:
    """check_project_file, then a read-only look at the tables: NotAProjectError for an SQLite
    file of another program (or one SQLite says is no database). Writes nothing."""
    check_project_file(db)
    try:
        with contextlib.closing(
            sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, isolation_level=None)
        ) as conn:
            _check_own_database(conn, db, schema_version(conn))
    except sqlite3.DatabaseError as exc:
        # Only "not a database" and "malformed" are verdicts. A read-only look can also fail
        # on a project of ours, e.g. one whose journal needs the recovery a writer does after
        # a crash: that is left to the real open.
        if getattr(exc, "sqlite_errorcode", None) not in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            return
        raise NotAProjectError(
            f"{db} is not a kpstudio project, or a damaged one: not a readable kpstudio project "
            f"file ({exc}); {_UNTOUCHED}"
        ) from None


def _check_own_database(conn: sqlite3.Connection, db: Path, version: int) -> None:
    """An SQLite file of another program: no schema version of ours, or none of our tables."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if version == 0 or not _OWN_TABLES <= tables:
        raise NotAProjectError(
            f"{db} is an SQLite database of another program, not a kpstudio project; {_UNTOUCHED}"
        )


def open_database(db: Path, readonly: bool, new: bool = False) -> sqlite3.Connection:
    """Connect with the project's durability settings, upgrading an older schema on a writable
    open (after copying the old file to `<name>.v<N>.bak`). Raises SchemaError or
    sqlite3.DatabaseError; never leaves a connection open on failure. Unless `new`, a file that
    is not a kpstudio project is refused (NotAProjectError) before anything is written to it."""
    if not new:
        check_project_file(db)
    if readonly:
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, isolation_level=None)
    else:
        conn = sqlite3.connect(db, isolation_level=None)
    try:
        if not new:  # before the first write (WAL mode rewrites the header)
            _check_own_database(conn, db, schema_version(conn))
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a committed edit is on disk before the call returns (measured < 1 ms per edit).
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 5000")
        version = schema_version(conn)  # fails fast if the file is not SQLite
        if version > SCHEMA_VERSION:
            migrate(conn)  # raises the clear "newer kpstudio" error
        if readonly and version != SCHEMA_VERSION:
            raise SchemaError(
                f"the project uses an older schema ({version}); open it once for writing "
                "to upgrade it"
            )
        if not readonly and 0 < version < SCHEMA_VERSION:
            with contextlib.closing(
                sqlite3.connect(db.with_name(f"{db.name}.v{version}.bak"))
            ) as dst:
                conn.backup(dst)
        if not readonly:
            migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the database up to `target`; returns the version it had before."""
    start = schema_version(conn)
    if start > SCHEMA_VERSION:
        raise SchemaError(
            f"the project was written by a newer kpstudio (schema {start}, "
            f"this version knows up to {SCHEMA_VERSION}); update kpstudio to open it"
        )
    for version in range(start, target):
        # executescript would commit on its own; run the statements inside our transaction.
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return start


def _statements(script: str) -> list[str]:
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        raise SchemaError("incomplete SQL statement in a migration")
    return out
