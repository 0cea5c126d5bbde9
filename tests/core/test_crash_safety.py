"""SIGKILL a process in the middle of a stream of label edits, many times: nothing committed
is ever lost, no edit is half-applied, and the project always opens."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from kpstudio.core.project import Project
from kpstudio.core.skeleton import Skeleton

N_IMAGES = 5
KEYPOINTS = ["a", "b", "c"]
KILLS = 15

# Each edit n writes x = n to all keypoints of image n % N_IMAGES in one set_labels call and,
# once the call returned, acknowledges n on stdout.
WRITER = textwrap.dedent("""
    import sys
    from kpstudio.core.project import Project
    project = Project.open(sys.argv[1])
    ids = [im.id for im in project.images()]
    n = int(sys.argv[2])
    while True:
        image_id = ids[n % len(ids)]
        project.set_labels(image_id, [(k, n, n % 997, 2) for k in {keypoints!r}])
        sys.stdout.write(f"{{n}}\\n")
        sys.stdout.flush()
        n += 1
""").format(keypoints=KEYPOINTS)


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX")
def test_sigkill_during_edits_never_loses_a_committed_edit(tmp_path):
    folder = tmp_path / "proj"
    with Project.create(folder, Skeleton.create(KEYPOINTS)) as p:
        # Huge virtual images so that x can carry the edit number.
        p.add_images([(tmp_path / f"{i}.png", 10**7, 10**7, f"h{i}") for i in range(N_IMAGES)])

    rng = random.Random(1234)
    acked_per_image: dict[int, int] = {}
    next_n = 0
    for _ in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(folder), str(next_n)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        target = rng.randint(5, 150)
        for _ in range(target):  # wait until the stream is well under way
            assert proc.stdout.readline(), "writer died on its own"
        time.sleep(rng.uniform(0, 0.01))  # then kill at an arbitrary moment
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        # Every complete line was acknowledged after its commit.
        acked = list(range(next_n, next_n + target))
        acked += [int(line) for line in rest.splitlines() if line.strip().isdigit()]
        for n in acked:
            acked_per_image[n % N_IMAGES] = n
        last = acked[-1]

        with Project.open(folder) as p:  # write-open: the dead writer's lock must be stale
            assert p._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            images = p.images()
            for index, image in enumerate(images):
                xs = {lab.x for lab in p.labels(image.id)}
                if index in acked_per_image:
                    assert len(xs) == 1, f"edit half-applied on image {index}: {xs}"
                    (x,) = xs
                    # the acknowledged edit, or the one in flight when the kill came
                    assert acked_per_image[index] <= x <= last + 1
                    acked_per_image[index] = int(x)
        next_n = last + 2  # leave room: the in-flight edit may have committed
