"""The project store: one SQLite file per project folder, every edit one transaction.

Durability: WAL journal with synchronous=FULL, so each committed edit survives a crash, a kill
or a power cut, and a failed write (a full disk) rolls back and leaves the file as it was.
Images are stored by path relative to the project folder, so moving the folder together with
its images keeps the project valid.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from kpstudio.core.label_store import LabelStore
from kpstudio.core.project_lock import ProjectLock, ProjectLockedError
from kpstudio.core.records import ImageRecord, Label, ProjectError
from kpstudio.core.schema import (
    NotAProjectError,
    SchemaError,
    check_project_database,
    open_database,
    schema_version,
)
from kpstudio.core.skeleton import Skeleton, SkeletonError, normalise_name
from kpstudio.core.skeleton_table import load_skeleton, write_skeleton
from kpstudio.core.write_turn import WriteTurn

DB_NAME = "project.kpstudio"
LOCK_NAME = ".kpstudio.lock"
DEFAULT_VAL_FRACTION = 0.2

__all__ = ["Project", "ProjectError", "ProjectLockedError", "ImageRecord", "Label", "DB_NAME"]

# How long one of a worker's transactions may hold the write turn: a user's edit waits at most
# this long (plus its own commit) behind a worker storing 100,000 predictions.
WORKER_TURN_S = 0.005
# A worker handle checkpoints the WAL itself, outside the write turn, at most this often: with
# SQLite's automatic checkpoints, the commit that crossed 1,000 WAL pages copied them into the
# database inside its transaction, and a user's edit waited behind that (339 ms) or paid for it.
WORKER_CHECKPOINT_S = 0.25


class Project(LabelStore):
    """An open project. Open it for writing (takes the lock) or read-only (no lock)."""

    def __init__(
        self, folder: Path, conn: sqlite3.Connection, lock: ProjectLock | None,
        owns_lock: bool = True, write_turn: WriteTurn | None = None,
    ):  # fmt: skip
        self.folder = folder
        self._conn = conn
        self._lock = lock
        self._owns_lock = owns_lock
        # The handle that owns the lock is the user's; worker handles give way to it.
        self._urgent = write_turn is None
        self._write_turn = write_turn or WriteTurn()
        self._data_version = None
        self._skeleton: Skeleton | None = None
        self._keypoint_ids: dict[str, int] = {}

    # -- opening and closing ------------------------------------------------------------
    @classmethod
    def create(
        cls, folder: str | os.PathLike, skeleton: Skeleton | None = None, *,
        seed: int = 0, val_fraction: float = DEFAULT_VAL_FRACTION,
    ) -> Project:  # fmt: skip
        """Create a project in `folder` (made if missing; must not hold a project already)."""
        folder = Path(folder).absolute()
        if (folder / DB_NAME).exists() or (folder / DB_NAME).is_symlink():
            try:
                check_project_database(folder / DB_NAME)
            except NotAProjectError as exc:  # someone else's file: never overwritten
                raise ProjectError(str(exc)) from None
            raise ProjectError(f"{folder} already holds a kpstudio project")
        folder.mkdir(parents=True, exist_ok=True)
        project = cls.open(folder, create=True)
        with project.transaction():
            project._set_meta("seed", seed)
            project._set_meta("val_fraction", val_fraction)
            project._set_meta("created", time.time())
        if skeleton is not None:
            project.set_skeleton(skeleton)
        return project

    @classmethod
    def open(
        cls, folder: str | os.PathLike, *, readonly: bool = False, create: bool = False
    ) -> Project:
        """Open an existing project; migrates an older schema (after a backup copy)."""
        folder = Path(folder).absolute()
        db = folder / DB_NAME
        if not create and not (db.exists() or db.is_symlink()):
            raise ProjectError(f"{folder} is not a kpstudio project (no {DB_NAME} in it)")
        if not create:
            try:  # before the lock: a foreign folder gets no lock file either
                check_project_database(db)
            except NotAProjectError as exc:
                raise ProjectError(str(exc)) from None
        lock = None
        if not readonly:
            lock = ProjectLock(folder / LOCK_NAME)
            lock.acquire()
        try:
            conn = open_database(db, readonly, new=create)
        except (sqlite3.DatabaseError, SchemaError) as exc:
            if lock:
                lock.release()
            if isinstance(exc, NotAProjectError):
                raise ProjectError(str(exc)) from None
            if isinstance(exc, SchemaError):
                raise ProjectError(f"{folder}: {exc}") from None
            raise ProjectError(
                f"{db} is not a kpstudio project, or a damaged one: not a readable kpstudio "
                f"project file ({exc})"
            ) from None
        except BaseException:
            if lock:
                lock.release()
            raise
        project = cls(folder, conn, lock)
        try:  # a skeleton edited behind our back (a colour 'Inf', a pair naming no keypoint)
            project._load_skeleton()
        except (SkeletonError, sqlite3.DatabaseError, KeyError, TypeError, ValueError) as exc:
            project.close()
            raise ProjectError(f"{db}: the stored skeleton cannot be read ({exc})") from None
        return project

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock is not None:
            if self._owns_lock:
                self._lock.release()
            self._lock = None

    def worker_handle(self) -> Project:
        """A second connection to this open project, for a worker thread to write through (an
        SQLite connection belongs to the thread that made it): call it in that thread. It
        writes under this handle's lock, so close it before this one."""
        if self.readonly:
            raise ProjectError(f"{self.folder} is open read-only")
        conn = open_database(self.folder / DB_NAME, readonly=False)
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # write_in_turns checkpoints instead
        return Project(self.folder, conn, self._lock, owns_lock=False,
                       write_turn=self._write_turn)  # fmt: skip

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def readonly(self) -> bool:
        return self._lock is None

    @property
    def schema_version(self) -> int:
        return schema_version(self._conn)

    # -- transactions -------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write (for the store's sibling modules: imports, runs). Disk-full and
        I/O errors roll back and surface as ProjectError."""
        if self.readonly:
            raise ProjectError(f"{self.folder} is open read-only")
        conn = self._conn
        # This handle and its worker handles take turns here: in SQLite's busy handler a
        # label edit slept and retried while a worker's back-to-back transactions won the
        # lock each time (3.4 s waits while 100,000 predictions were stored).
        with self._write_turn.take(self._urgent):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._skeleton = None  # cached copy may describe the rolled-back state
                if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError):
                    if "full" in str(exc).lower():
                        raise ProjectError(
                            f"the disk holding {self.folder} is full; the change was not saved "
                            "and the project is unchanged"
                        ) from exc
                raise

    def write_in_turns(
        self, items: Sequence, write: Callable[[sqlite3.Connection, Sequence], None],
        budget_s: float | None = None,
    ) -> None:  # fmt: skip
        """Write `items` with `write(conn, chunk)` in short transactions, for a worker's bulk
        writes: each chunk is sized from the time the previous ones took so that a
        transaction holds the write turn about `budget_s`, and an edit of the user waits no
        longer than that. Each chunk is atomic; the whole is not."""
        budget_s = WORKER_TURN_S if budget_s is None else budget_s
        # The chunks commit without an fsync each (WAL stays consistent: a power cut could only
        # drop the newest chunks), and every checkpoint, the last one included, syncs them: when
        # this returns, all is on disk. Without it each chunk's fsync held the write turn.
        self._conn.execute("PRAGMA synchronous = NORMAL")
        try:
            self._write_chunks(items, write, budget_s)
        finally:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._conn.execute("PRAGMA synchronous = FULL")

    def _write_chunks(self, items: Sequence, write, budget_s: float) -> None:
        size, start = 1, 0
        checkpointed = time.perf_counter()
        while start < len(items):
            chunk = items[start : start + size]
            t0 = time.perf_counter()
            with self.transaction() as conn:
                write(conn, chunk)
            took = time.perf_counter() - t0
            start += len(chunk)
            # Grow at most 2× a step (a slow first chunk warms caches); shrink at once.
            per_item = max(took, 1e-6) / len(chunk)
            size = max(1, min(2 * size, int(budget_s / per_item)))
            if time.perf_counter() - checkpointed > WORKER_CHECKPOINT_S:
                # Outside the write turn: a WAL checkpoint runs beside other writers.
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                checkpointed = time.perf_counter()

    def _set_meta(self, key: str, value) -> None:
        self._conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Read-only SQL for the store's sibling modules (runs, training snapshots)."""
        return self._conn.execute(sql, args).fetchall()

    def meta(self, key: str, default=None):
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # -- skeleton -----------------------------------------------------------------------
    @property
    def skeleton(self) -> Skeleton | None:
        # data_version moves when another connection (a worker handle) commits: an import
        # there may have changed the skeleton this handle has cached.
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if self._skeleton is None or version != self._data_version:
            self._load_skeleton()
            self._data_version = version
        return self._skeleton

    def _load_skeleton(self) -> None:
        self._skeleton, self._keypoint_ids = load_skeleton(self._conn)

    def set_skeleton(self, skeleton: Skeleton, renames: dict[str, str] | None = None) -> int:
        """Replace the skeleton. Keypoints keep their labels by name (or via `renames`
        old → new); keypoints left out are deleted with their labels. Returns labels deleted."""
        with self.transaction() as conn:
            return self.write_skeleton(conn, skeleton, renames)

    def write_skeleton(
        self, conn: sqlite3.Connection, skeleton: Skeleton, renames: dict[str, str] | None = None
    ) -> int:
        """set_skeleton inside a caller's transaction (an import changes it with its labels)."""
        deleted, changed_count, ids = write_skeleton(conn, skeleton, renames)
        self._skeleton, self._keypoint_ids = skeleton, ids
        if changed_count:  # "done" means every keypoint has a decision: recount all images
            self.refresh_status(conn)
        return deleted

    def _keypoint_id(self, name: str) -> int:
        if self.skeleton is None:
            raise ProjectError(f"project {self.folder} has no skeleton yet")
        key = normalise_name(name)
        if key not in self._keypoint_ids:
            raise ProjectError(
                f"unknown keypoint {name!r}; the skeleton has {', '.join(self.skeleton.keypoints)}"
            )
        return self._keypoint_ids[key]

    # -- images -------------------------------------------------------------------------
    def relative_path(self, path: str | os.PathLike) -> str:
        """How an image file is stored: relative to the project folder, POSIX separators."""
        full = Path(path).absolute()
        try:
            return Path(os.path.relpath(full, self.folder)).as_posix()
        except ValueError:  # another drive on Windows: no relative path exists
            return full.as_posix()

    def image_path(self, image: ImageRecord | int) -> Path:
        record = image if isinstance(image, ImageRecord) else self.image(image)
        return (self.folder / record.path).resolve()

    def split_for(self, key: str) -> str:
        """Deterministic train/val split from the project seed and an image key (its hash)."""
        seed = self.meta("seed", 0)
        fraction = self.meta("val_fraction", DEFAULT_VAL_FRACTION)
        digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
        return "val" if int.from_bytes(digest, "big") / 2**64 < fraction else "train"

    def add_images(self, entries: Iterable[tuple], in_turns: bool = False) -> list[int]:
        """Add images in one transaction: (path, width, height, sha256[, split]) tuples; with
        `in_turns` (a worker adding a big folder), in short ones (write_in_turns).

        A path already in the project keeps its row (and labels); its id is returned."""
        rows = []
        for entry in entries:
            path, width, height, sha = entry[:4]
            split = entry[4] if len(entry) > 4 and entry[4] else self.split_for(sha)
            rows.append((self.relative_path(path), int(width), int(height), sha, split))
        ids: list[int] = []
        if in_turns:
            self.write_in_turns(rows, lambda conn, chunk: ids.extend(_insert_images(conn, chunk)))
        else:
            with self.transaction() as conn:
                ids = _insert_images(conn, rows)
        return ids

    def add_image_folder(self, folder: str | os.PathLike, progress=None):
        """Scan a folder (decoding every image); add the good ones, report the bad ones.

        Returns (added image ids, [(path, message), ...] for files that could not be read)."""
        from kpstudio.core.image_reader import scan_folder

        good, bad = scan_folder(folder, progress=progress)
        ids = self.add_images((i.path, i.width, i.height, i.sha256) for i in good)
        return ids, bad

    def images(self, status: str | None = None, limit: int | None = None) -> list[ImageRecord]:
        sql = "SELECT id, path, width, height, sha256, split, status FROM images"
        args: tuple = ()
        if status:
            sql, args = sql + " WHERE status = ?", (status,)
        sql += " ORDER BY id"
        if limit is not None:
            sql, args = sql + " LIMIT ?", (*args, int(limit))
        return [ImageRecord(*r) for r in self._conn.execute(sql, args)]

    def image(self, image_id: int) -> ImageRecord:
        row = self._conn.execute(
            "SELECT id, path, width, height, sha256, split, status FROM images WHERE id = ?",
            (image_id,),
        ).fetchone()
        if row is None:
            raise ProjectError(f"project {self.folder} has no image with id {image_id}")
        return ImageRecord(*row)

    def set_split(self, image_ids: Iterable[int], split: str) -> None:
        if split not in ("train", "val"):
            raise ProjectError(f"split must be 'train' or 'val', not {split!r}")
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE images SET split = ? WHERE id = ?", [(split, i) for i in image_ids]
            )

    def mark_unreadable(self, image_id: int) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE images SET status = 'unreadable' WHERE id = ?", (image_id,))

    # -- summary ------------------------------------------------------------------------
    def counts(self) -> dict:
        """Numbers for `kpstudio info` and the image list header."""
        conn = self._conn
        by_status = dict(conn.execute("SELECT status, COUNT(*) FROM images GROUP BY status"))
        by_split = dict(conn.execute("SELECT split, COUNT(*) FROM images GROUP BY split"))
        labeled_points = conn.execute(
            "SELECT COUNT(*) FROM labels WHERE visibility > 0"
        ).fetchone()[0]
        instances = conn.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT image_id, instance FROM labels)"
        ).fetchone()[0]
        return {
            "images": sum(by_status.values()),
            "labeled_images": by_status.get("partial", 0) + by_status.get("done", 0),
            "done_images": by_status.get("done", 0),
            "status": by_status,
            "split": {"train": by_split.get("train", 0), "val": by_split.get("val", 0)},
            "instances": instances,
            "labeled_points": labeled_points,
        }


def _insert_images(conn: sqlite3.Connection, rows: Iterable[tuple]) -> list[int]:
    """Inside a transaction: (relative path, width, height, sha256, split) rows → image ids,
    an existing path keeping its row."""
    ids, now = [], time.time()
    for rel, width, height, sha, split in rows:
        found = conn.execute("SELECT id FROM images WHERE path = ?", (rel,)).fetchone()
        if found:
            ids.append(found[0])
            continue
        ids.append(
            conn.execute(
                "INSERT INTO images(path, width, height, sha256, split, added) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (rel, width, height, sha, split, now),
            ).lastrowid
        )
    return ids
