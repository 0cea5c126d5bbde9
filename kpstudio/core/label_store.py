"""The labels part of the project store: reading and writing keypoint labels, and the image
status that follows from them. Project (kpstudio.core.project) is a LabelStore; this part uses
its connection, its transactions and its skeleton's keypoint ids."""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Iterable

from kpstudio.core.labelset import Instance, LabelError, Visibility, check_point
from kpstudio.core.point_state import PointChanges, PointState
from kpstudio.core.records import Label, ProjectError

SOURCES = ("manual", "prediction-accepted")


class LabelStore:
    """Label reads and writes of a Project; every write is one transaction that also updates
    the image's status."""

    def labels(self, image_id: int) -> list[Label]:
        """All labels of one image, in instance then skeleton order."""
        rows = self._conn.execute(
            "SELECT k.name, l.instance, l.x, l.y, l.visibility, l.source, l.updated "
            "FROM labels l JOIN keypoints k ON k.id = l.keypoint_id "
            "WHERE l.image_id = ? ORDER BY l.instance, k.position",
            (image_id,),
        ).fetchall()
        return [
            Label(n, i, math.nan if x is None else x, math.nan if y is None else y,
                  Visibility(v), s, u)
            for n, i, x, y, v, s, u in rows
        ]  # fmt: skip

    def instances(self, image_id: int) -> list[Instance]:
        """Labels of one image as Instance arrays (missing rows count as absent)."""
        skeleton = self.skeleton
        k = len(skeleton) if skeleton else 0
        out: dict[int, Instance] = {}
        for label in self.labels(image_id):
            inst = out.setdefault(label.instance, Instance.empty(k))
            j = skeleton.keypoints.index(label.keypoint)
            inst.xy[j] = (label.x, label.y)
            inst.visibility[j] = int(label.visibility)
        return [out[i] for i in sorted(out)]

    def set_label(
        self, image_id: int, keypoint: str, x: float | None, y: float | None,
        visibility: Visibility | int = Visibility.VISIBLE, *, instance: int = 0,
        source: str = "manual",
    ) -> None:  # fmt: skip
        """Set one keypoint of one image (absent: visibility 0, no position). One transaction."""
        self.set_labels(image_id, [(keypoint, x, y, visibility)], instance=instance, source=source)

    def set_labels(
        self, image_id: int, points: Iterable[tuple], *, instance: int = 0, source: str = "manual"
    ) -> None:
        """Set several keypoints of one instance at once (a paste, an accepted prediction)."""
        changes = {(instance, keypoint): PointState(x, y, visibility, source)
                   for keypoint, x, y, visibility in points}  # fmt: skip
        self.write_points(image_id, changes)

    def point(self, image_id: int, keypoint: str, instance: int = 0) -> PointState | None:
        """What one keypoint of one instance holds on an image; None when not labeled."""
        row = self._conn.execute(
            "SELECT l.x, l.y, l.visibility, l.source FROM labels l "
            "JOIN keypoints k ON k.id = l.keypoint_id "
            "WHERE l.image_id = ? AND l.instance = ? AND k.name = ?",
            (image_id, instance, keypoint),
        ).fetchone()
        if row is None:
            return None
        x, y, vis, source = row
        return PointState(math.nan if x is None else x, math.nan if y is None else y,
                          Visibility(vis), source)  # fmt: skip

    def write_points(self, image_id: int, changes: PointChanges) -> None:
        """Make each (instance, keypoint) of `changes` hold its PointState, or no label for
        None: one transaction, so one user action (an accepted 68-point prediction, its undo)
        is one commit. Checked in full before anything is written."""
        with self.transaction() as conn:
            self.write_points_in(conn, image_id, changes)

    def write_points_in(
        self, conn: sqlite3.Connection, image_id: int, changes: PointChanges
    ) -> None:
        """write_points inside a caller's transaction (a skeleton edit's undo)."""
        image = self.image(image_id)
        now = time.time()
        rows, deleted = [], []
        for (instance, keypoint), state in changes.items():
            if instance < 0:
                raise ProjectError(f"instance must be 0 or more, not {instance}")
            kid = self._keypoint_id(keypoint)
            if state is None:
                deleted.append((image_id, instance, kid))
                continue
            if state.source not in SOURCES:
                raise ProjectError(f"label source must be one of {SOURCES}, not {state.source!r}")
            vis = _visibility(state.visibility, keypoint)
            if vis == Visibility.ABSENT:
                rows.append((image_id, instance, kid, None, None, 0, state.source, now))
                continue
            try:
                x, y = check_point(state.x, state.y, image.width, image.height,
                                   f"{image.path}: {keypoint}", None, tolerance=0.0)  # fmt: skip
            except LabelError as exc:
                raise ProjectError(str(exc)) from None
            rows.append((image_id, instance, kid, x, y, int(vis), state.source, now))
        conn.executemany(
            "DELETE FROM labels WHERE image_id = ? AND instance = ? AND keypoint_id = ?", deleted
        )
        conn.executemany(
            "INSERT INTO labels(image_id, instance, keypoint_id, x, y, visibility, source, "
            "updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(image_id, instance, keypoint_id) DO UPDATE SET x = excluded.x, "
            "y = excluded.y, visibility = excluded.visibility, source = excluded.source, "
            "updated = excluded.updated",
            rows,
        )
        self.refresh_status(conn, (image_id,))

    def delete_label(self, image_id: int, keypoint: str, *, instance: int = 0) -> None:
        """Forget a keypoint's label on an image (back to 'not labeled yet')."""
        self.write_points(image_id, {(instance, keypoint): None})

    def replace_instances(
        self, conn: sqlite3.Connection, image_id: int, instances: list[Instance], source: str
    ) -> None:
        """Inside a caller's transaction: make an image's labels exactly `instances`."""
        ids = [self._keypoint_ids[name] for name in self.skeleton.keypoints]
        now = time.time()
        conn.execute("DELETE FROM labels WHERE image_id = ?", (image_id,))
        rows = []
        for i, inst in enumerate(instances):
            for j, kid in enumerate(ids):
                vis = int(inst.visibility[j])
                x, y = (None, None) if vis == 0 else (float(inst.xy[j, 0]), float(inst.xy[j, 1]))
                rows.append((image_id, i, kid, x, y, vis, source, now))
        conn.executemany(
            "INSERT INTO labels(image_id, instance, keypoint_id, x, y, visibility, source, "
            "updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        self.refresh_status(conn, (image_id,))

    def refresh_status(
        self, conn: sqlite3.Connection, image_ids: Iterable[int] | None = None
    ) -> None:
        """Inside a caller's transaction: recompute the status of `image_ids` (None: of every
        image) from their labels and stored predictions."""
        # An image is done when every instance on it has a decision for every keypoint; one
        # without labels but with a stored model prediction is 'predicted' (so undoing an
        # accepted prediction gives the image back its prediction, not 'unlabeled').
        sql = """
            UPDATE images SET status = CASE
              WHEN NOT EXISTS (SELECT 1 FROM labels WHERE image_id = images.id) THEN
                CASE WHEN EXISTS (SELECT 1 FROM predictions WHERE image_id = images.id)
                     THEN 'predicted' ELSE 'unlabeled' END
              WHEN EXISTS (SELECT 1 FROM labels WHERE image_id = images.id
                           GROUP BY instance HAVING COUNT(*) < :k) THEN 'partial'
              ELSE 'done' END
            WHERE status != 'unreadable'"""
        k = len(self._keypoint_ids)
        if image_ids is None:
            conn.execute(sql, {"k": k})
        else:
            conn.executemany(sql + " AND id = :id", [{"k": k, "id": int(i)} for i in image_ids])


def _visibility(value, keypoint: str) -> Visibility:
    try:
        return Visibility(int(value))
    except (TypeError, ValueError):
        raise ProjectError(
            f"visibility of {keypoint!r} must be 0 (absent), 1 (occluded) or 2 (visible), "
            f"not {value!r}"
        ) from None
