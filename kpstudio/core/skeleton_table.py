"""Storing the skeleton in the project database (tables keypoints, edges, flip_pairs).

Keypoints have stable ids: labels point at the id, so renaming or reordering a keypoint never
touches a label, and deleting one deletes its labels through the foreign key.
"""

from __future__ import annotations

import sqlite3

from kpstudio.core.skeleton import Skeleton, normalise_name


def load_skeleton(conn: sqlite3.Connection) -> tuple[Skeleton | None, dict[str, int]]:
    """The stored skeleton (None before one is set) and its keypoint ids by name."""
    rows = conn.execute("SELECT id, name, color FROM keypoints ORDER BY position").fetchall()
    if not rows:
        return None, {}
    names = {r[0]: r[1] for r in rows}
    # rowid order is insertion order: edges and pairs come back as the user gave them.
    edges = [(names[a], names[b]) for a, b in conn.execute(
        "SELECT a, b FROM edges ORDER BY rowid")]  # fmt: skip
    flips = [(names[a], names[b]) for a, b in conn.execute(
        "SELECT a, b FROM flip_pairs ORDER BY rowid")]  # fmt: skip
    # check_names=False: a store written before names were checked must still open (what
    # prints its names escapes them).
    skeleton = Skeleton.create([r[1] for r in rows], edges, flips, [r[2] for r in rows],
                               check_names=False)  # fmt: skip
    return skeleton, {r[1]: r[0] for r in rows}


def write_skeleton(
    conn: sqlite3.Connection, skeleton: Skeleton, renames: dict[str, str] | None = None
) -> tuple[int, bool, dict[str, int]]:
    """Make the stored skeleton `skeleton`, inside the caller's transaction.

    Keypoints keep their id (and so their labels) by name, or through `renames` old → new.
    Returns (labels deleted with dropped keypoints, whether the keypoint count changed, ids).
    """
    renames = {normalise_name(a): normalise_name(b) for a, b in (renames or {}).items()}
    old = dict(conn.execute("SELECT name, id FROM keypoints"))
    kept_old = {renames.get(name, name): kid for name, kid in old.items()}
    gone = [kid for name, kid in kept_old.items() if name not in skeleton.keypoints]
    deleted = 0
    for kid in gone:
        deleted += conn.execute(
            "SELECT COUNT(*) FROM labels WHERE keypoint_id = ?", (kid,)
        ).fetchone()[0]
        conn.execute("DELETE FROM keypoints WHERE id = ?", (kid,))
    # Park names first so a swap of two names never trips the UNIQUE constraint.
    conn.execute("UPDATE keypoints SET name = char(1) || id")
    ids = {}
    for pos, (name, color) in enumerate(zip(skeleton.keypoints, skeleton.colors, strict=True)):
        if name in kept_old:
            kid = kept_old[name]
            conn.execute(
                "UPDATE keypoints SET name = ?, position = ?, color = ? WHERE id = ?",
                (name, pos, color, kid),
            )
        else:
            kid = conn.execute(
                "INSERT INTO keypoints(name, position, color) VALUES (?, ?, ?)",
                (name, pos, color),
            ).lastrowid
        ids[name] = kid
    conn.execute("DELETE FROM edges")
    conn.execute("DELETE FROM flip_pairs")
    conn.executemany(
        "INSERT INTO edges(a, b) VALUES (?, ?)", [(ids[a], ids[b]) for a, b in skeleton.edges]
    )
    conn.executemany(
        "INSERT INTO flip_pairs(a, b) VALUES (?, ?)",
        [(ids[a], ids[b]) for a, b in skeleton.flip_pairs],
    )
    return deleted, bool(gone) or len(ids) != len(old), ids
