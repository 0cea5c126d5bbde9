"""What each `kpstudio` subcommand does; kpstudio.cli only parses the command line.

Modules here import their heavy dependencies inside the functions, so that `kpstudio --help`
loads neither Qt nor TensorFlow.
"""

from __future__ import annotations

import re
import sys

# C0 and C1 controls (ESC starts terminal escape sequences), DEL, and the bidi overrides that
# make text read as something else. Newlines are kept only where a message is built with them.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """`text` safe for a terminal: control characters shown as \\xNN / \\uNNNN escapes.

    Names and paths come from files other people made; printed raw, an escape sequence in one
    could recolour, retitle or rewrite the user's terminal."""
    text = str(text).encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def progress_bar(desc: str):
    """A tqdm bar on stderr driven by progress(done, total) callbacks."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="img", file=sys.stderr, disable=None)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update
