"""What each `kpstudio` subcommand does; kpstudio.cli only parses the command line.

Modules here import their heavy dependencies inside the functions, so that `kpstudio --help`
loads neither Qt nor TensorFlow.
"""

from __future__ import annotations

import sys


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
