"""Whose write comes next among one project's SQLite handles, and the thread switch interval a
process that edits beside a writing worker thread runs with (kpstudio.core.project uses both)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

# A process that edits while a worker thread writes (the studio) sets Python's thread switch
# interval to this: the default 5 ms is paid at each of an edit's handovers of the GIL from a
# busy worker (measured: edits p90 51 ms at 5 ms, 6 ms at 0.5 ms, while predictions were stored).
EDIT_SWITCH_INTERVAL_S = 0.0005


class WriteTurn:
    """Whose write comes next among one project's handles (the main one and its worker
    handles). The main handle, where the user's edits are written, goes first: a worker's
    transaction waits while an edit is waiting, so an edit waits for at most one worker
    transaction, never for a queue of them."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._busy = False
        self._urgent_waiting = 0

    @contextlib.contextmanager
    def take(self, urgent: bool) -> Iterator[None]:
        with self._changed:
            self._urgent_waiting += urgent
            try:
                while self._busy or (not urgent and self._urgent_waiting):
                    self._changed.wait()
            finally:
                self._urgent_waiting -= urgent
            self._busy = True
        try:
            yield
        finally:
            with self._changed:
                self._busy = False
                self._changed.notify_all()
