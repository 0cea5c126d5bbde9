"""One writer per project: an OS file lock plus a note of who holds it.

The lock is an advisory OS lock (flock on POSIX, msvcrt on Windows) held for as long as the
project is open for writing. The OS drops it when the holder dies, so a crashed or killed
process never leaves the project locked; the note (pid, host, time) left by a dead holder is
recognised as stale and replaced. The note only serves the error message a second process shows.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt
else:
    import fcntl


class ProjectLockedError(RuntimeError):
    """The project is open for writing in another process."""


class ProjectLock:
    """Exclusive, crash-safe lock on a project folder."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file = None
        self.stale_holder: dict | None = None  # the dead holder replaced on acquire, if any

    def acquire(self) -> None:
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held while open
        try:
            _try_lock(handle)
        except OSError:
            handle.seek(0)
            holder = _parse(handle.read())
            handle.close()
            raise ProjectLockedError(_locked_message(self.path.parent, holder)) from None
        handle.seek(0)
        previous = _parse(handle.read())
        if previous:
            self.stale_holder = previous  # its process is gone: the OS released its lock
        note = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(note))
        handle.flush()
        os.fsync(handle.fileno())
        self._file = handle

    def release(self) -> None:
        if self._file is None:
            return
        try:
            # Clear the note before unlocking, so a reader never sees our pid on a free lock.
            self._file.seek(0)
            self._file.truncate()
            self._file.flush()
            _unlock(self._file)
        finally:
            self._file.close()
            self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None


def _try_lock(handle) -> None:
    if os.name == "nt":  # pragma: no cover
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _unlock(handle) -> None:
    if os.name == "nt":  # pragma: no cover
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _parse(text: str) -> dict | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _locked_message(folder: Path, holder: dict | None) -> str:
    if not holder:
        return f"project {folder} is open in another process"
    since = time.strftime("%Y-%m-%d %H:%M", time.localtime(holder.get("since", 0)))
    return (
        f"project {folder} is open in process {holder.get('pid')} on host "
        f"{holder.get('host')} (since {since}); close it there first"
    )
