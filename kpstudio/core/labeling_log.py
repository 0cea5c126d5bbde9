"""What labeling each image cost: seconds, clicks, accepted and corrected prediction points.

The `labeling_log` table (schema 5) holds one row per image worked on; its counters only add
up. The studio counts in memory (`LabelingTally`) and writes the counts inside the transaction
of the next label edit (or when the user leaves the image, or closes the project), so counting
never costs a commit of its own per click, and a crash loses at most what was counted on the
current image since its last edit. No Qt here.

What counts:
- seconds: the time an image was current while the user was active. Between two events (a
  label edit, switching images) at most `IDLE_CAP_S` is counted: a user who leaves the studio
  open over lunch has not spent an hour on that image.
- clicks: placements, moves (a drag, or one run of arrow-key nudges), deletions, visibility
  changes, marking a keypoint absent: each user gesture that changed a label.
- accepted: prediction points taken as labels (Accept in the Review dock), one per keypoint.
- corrected: accepted points the user later moved, replaced or deleted (counted once per
  point: after the correction the point is a manual label).
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

# Idle gaps longer than this count as this long. 30 s is longer than any pause of someone
# looking closely at an image between two clicks, and short enough that a studio left open
# does not swamp the figures.
IDLE_CAP_S = 30.0


@dataclass
class Counters:
    seconds: float = 0.0
    clicks: int = 0
    accepted: int = 0
    corrected: int = 0

    def empty(self) -> bool:
        return not (self.seconds or self.clicks or self.accepted or self.corrected)


class LabelingTally:
    """The counters of a studio session not yet written, and the clock of the current image.

    `show(image_id)` when the image changes, `click`/`accept`/`correct` when the user edits;
    `write_pending(conn)` inside an edit's transaction, then `forget_pending()` once it has
    committed (a rolled-back edit keeps the counts for the next one)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 idle_cap_s: float = IDLE_CAP_S):  # fmt: skip
        self._clock, self._cap = clock, idle_cap_s
        self.current: int | None = None
        self._last: float | None = None
        self.pending: dict[int, Counters] = {}

    def _counters(self, image_id: int) -> Counters:
        return self.pending.setdefault(image_id, Counters())

    def activity(self) -> None:
        """The user did something: the time since the last event goes to the current image."""
        now = self._clock()
        if self.current is not None and self._last is not None:
            gap = min(max(now - self._last, 0.0), self._cap)
            if gap > 0:
                self._counters(self.current).seconds += gap
        self._last = now

    def show(self, image_id: int | None) -> None:
        """The studio now shows `image_id` (None: no image, or the project closes)."""
        self.activity()
        self.current = image_id

    def click(self, image_id: int, n: int = 1) -> None:
        self.activity()
        self._counters(image_id).clicks += n

    def accept(self, image_id: int, points: int) -> None:
        self.activity()
        self._counters(image_id).accepted += points

    def correct(self, image_id: int, points: int = 1) -> None:
        self._counters(image_id).corrected += points

    def has_pending(self) -> bool:
        return any(not c.empty() for c in self.pending.values())

    def write_pending(self, conn: sqlite3.Connection) -> None:
        """Inside the caller's transaction: add the pending counts to the table."""
        rows = [(image_id, c.seconds, c.clicks, c.accepted, c.corrected, time.time())
                for image_id, c in self.pending.items() if not c.empty()]  # fmt: skip
        add_counts(conn, rows)

    def forget_pending(self) -> None:
        """The transaction that wrote them has committed."""
        self.pending.clear()


def add_counts(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    """Inside a transaction: add (image_id, seconds, clicks, accepted, corrected, updated) to
    each image's row. An image deleted meanwhile is skipped (its row would dangle)."""
    conn.executemany(
        "INSERT INTO labeling_log(image_id, seconds, clicks, accepted, corrected, updated) "
        "SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM images WHERE id = ?1) "
        "ON CONFLICT(image_id) DO UPDATE SET seconds = seconds + excluded.seconds, "
        "clicks = clicks + excluded.clicks, accepted = accepted + excluded.accepted, "
        "corrected = corrected + excluded.corrected, updated = excluded.updated",
        rows,
    )


def image_counts(project, image_id: int) -> Counters:
    """What is recorded for one image (zeros when nothing is)."""
    rows = project.query(
        "SELECT seconds, clicks, accepted, corrected FROM labeling_log WHERE image_id = ?",
        (image_id,),
    )
    return Counters(*rows[0]) if rows else Counters()


@dataclass(frozen=True)
class LabelingSpeed:
    images_labeled: int  # done images with something recorded
    median_seconds: float | None  # per labeled image
    clicks_per_image: float | None
    accepted: int  # prediction points accepted, over the whole project
    corrected: int  # of those, corrected later

    @property
    def corrected_share(self) -> float | None:
        return self.corrected / self.accepted if self.accepted else None

    def to_dict(self) -> dict:
        return {"images_labeled": self.images_labeled, "median_seconds": self.median_seconds,
                "clicks_per_image": self.clicks_per_image, "accepted": self.accepted,
                "corrected": self.corrected, "corrected_share": self.corrected_share}  # fmt: skip

    def sentence(self) -> str:
        """One line for `kpstudio info` and the Review dock."""
        if not self.images_labeled and not self.accepted:
            return "labeling speed: nothing recorded yet"
        parts = [f"{self.images_labeled} image(s) labeled"]
        if self.median_seconds is not None:
            parts.append(f"median {self.median_seconds:.0f} s and "
                         f"{self.clicks_per_image:.1f} clicks per image")  # fmt: skip
        if self.accepted:
            parts.append(f"{self.accepted} predicted points accepted, "
                         f"{self.corrected_share:.0%} of them corrected")  # fmt: skip
        return "labeling speed: " + "; ".join(parts)


def labeling_speed(project) -> LabelingSpeed:
    """The project's labeling speed over the images marked done that have a record."""
    rows = project.query(
        "SELECT l.seconds, l.clicks FROM labeling_log l JOIN images i ON i.id = l.image_id "
        "WHERE i.status = 'done' AND (l.seconds > 0 OR l.clicks > 0 OR l.accepted > 0)"
    )
    accepted, corrected = project.query(
        "SELECT COALESCE(SUM(accepted), 0), COALESCE(SUM(corrected), 0) FROM labeling_log"
    )[0]
    if not rows:
        return LabelingSpeed(0, None, None, int(accepted), int(corrected))
    return LabelingSpeed(len(rows), float(statistics.median(r[0] for r in rows)),
                         sum(r[1] for r in rows) / len(rows), int(accepted),
                         int(corrected))  # fmt: skip
