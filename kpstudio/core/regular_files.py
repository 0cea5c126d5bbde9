"""Opening a file a user named, without letting it hang or exhaust the machine.

A named pipe called ``frame.png`` blocks a plain ``open`` forever; a symlink to ``/dev/zero``
reads until memory runs out. So files are opened non-blocking, checked with ``fstat`` on the
opened descriptor (no race between the check and the read) and refused unless they are regular
files of a bounded size. Every refusal is a FileRefused naming the file; callers turn it into
their own error type.
"""

from __future__ import annotations

import os
import reprlib
import stat
from pathlib import Path
from typing import BinaryIO

from kpstudio.core.limits import MAX_QUOTED_CHARS


class FileRefused(ValueError):
    """A path that is not a readable regular file within the size limit; names the file."""


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISSOCK, "a socket"),
)


def open_regular(path: str | os.PathLike, max_bytes: int | None = None) -> BinaryIO:
    """The file opened for binary reading; FileRefused unless it is a regular file (a symlink
    to one is fine) of at most `max_bytes` bytes."""
    path = Path(path)
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileRefused(f"{path}: the file does not exist") from None
    except PermissionError:
        raise FileRefused(f"{path}: kpstudio is not allowed to read this file") from None
    except IsADirectoryError:
        raise FileRefused(f"{path}: this is a folder, not a file") from None
    except OSError as exc:
        raise FileRefused(f"{path}: the file cannot be opened ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((word for test, word in _KINDS if test(info.st_mode)), "not a file")
            raise FileRefused(
                f"{path}: this is {kind}, not a regular file; kpstudio only reads regular files"
            )
        if max_bytes is not None and info.st_size > max_bytes:
            raise FileRefused(
                f"{path}: the file holds {info.st_size:,} bytes, more than the limit of "
                f"{max_bytes:,} for this kind of file"
            )
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike, max_bytes: int) -> bytes:
    """All bytes of a regular file of at most `max_bytes` (FileRefused otherwise)."""
    with open_regular(path, max_bytes) as fp:
        try:
            data = fp.read(max_bytes + 1)  # bounded even if the file grew after fstat
        except OSError as exc:
            raise FileRefused(f"{path}: the file cannot be read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise FileRefused(f"{path}: the file grew beyond the limit of {max_bytes:,} bytes")
    return data


_QUOTE = reprlib.Repr()
_QUOTE.maxlevel = 3
_QUOTE.maxstring = _QUOTE.maxother = _QUOTE.maxlong = MAX_QUOTED_CHARS
_QUOTE.maxlist = _QUOTE.maxtuple = _QUOTE.maxdict = _QUOTE.maxset = 6


def quote(value: object) -> str:
    """repr() for error messages, bounded in length and depth whatever a file holds."""
    try:
        return _QUOTE.repr(value)
    except (ValueError, RecursionError):  # ints beyond Python's str conversion limit
        return f"<a {type(value).__name__} too large to show>"
