"""The write turn: the user's handle goes before waiting workers."""

from __future__ import annotations

import threading
import time

from kpstudio.core.write_turn import WriteTurn


def test_the_users_edit_takes_the_write_turn_before_a_waiting_worker():
    """A worker and the user both wait while a worker transaction runs: the user goes next,
    so an edit never waits behind a queue of worker transactions."""
    turn, order = WriteTurn(), []
    holding, release = threading.Event(), threading.Event()

    def take(name, urgent, hold=None):
        with turn.take(urgent):
            if hold:
                holding.set()
                release.wait(5)
            order.append(name)

    first = threading.Thread(target=take, args=("worker 1", False, True))
    first.start()
    holding.wait(5)
    second = threading.Thread(target=take, args=("worker 2", False))
    second.start()
    time.sleep(0.05)  # the second worker is queued first...
    user = threading.Thread(target=take, args=("user", True))
    user.start()
    time.sleep(0.05)
    release.set()
    for thread in (first, second, user):
        thread.join(5)
    assert order == ["worker 1", "user", "worker 2"]  # ... yet the user's edit goes first
