"""Tracking benchmark: identity swaps per 1000 frames and milliseconds per frame of the instance
tracker (kpstudio/core/instance_tracking.py) on synthetic clips of 2, 5 and 10 animals.

The clips are tests/synthetic_animals.py's: animals on overlapping circles (their paths cross,
some close enough to touch), noise of 3 % of a body length on every point, 5 % of animals and
10 % of points missed, a false positive in 5 % of frames, instances listed in random order, at
0.15 body lengths a frame. Four linkers are compared on the same clips: the tracker (motion
model, ids unbounded), the tracker told the number of animals, the tracker without its motion
model, and a naive nearest-centroid linker; then two animals crossing in an X while hidden.
Targets: no more than a few swaps per 1000 frames
for the tracker at 2-5 animals, and well under a millisecond a frame (the model takes tens).

    python benchmarks/bench_tracking.py [--frames 3000] [--seeds 3] [--animals 2 5 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # synthetic_animals

from synthetic_animals import (  # noqa: E402
    K,
    count_swaps,
    crossing_clip,
    make_clip,
    nearest_centroid_ids,
)

from kpstudio.core.instance_tracking import TrackerParams, link_tracks  # noqa: E402

FPS = 30.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--animals", type=int, nargs="+", default=[2, 5, 10])
    args = parser.parse_args()
    print(f"{args.frames} frames × {args.seeds} seeds per row; swaps per 1000 frames")
    print(f"{'animals':>7} {'tracker':>8} {'+ N':>8} {'no motion':>10} {'centroid':>9} "
          f"{'ms/frame':>9} {'ids':>5}")  # fmt: skip
    for animals in args.animals:
        swaps = {"tracker": 0, "known": 0, "still": 0, "centroid": 0}
        seconds, ids_used = 0.0, 0
        for seed in range(args.seeds):
            clip = make_clip(animals, args.frames, seed=seed, spread=0.6)
            t0 = time.perf_counter()
            ids = link_tracks(clip.frames, K, fps=FPS)
            seconds += time.perf_counter() - t0
            ids_used += len({i for frame in ids for i in frame})
            swaps["tracker"] += count_swaps(clip.truth, ids)
            known = link_tracks(clip.frames, K, max_tracks=animals, fps=FPS)
            swaps["known"] += count_swaps(clip.truth, known)
            still = link_tracks(clip.frames, K, params=TrackerParams.for_fps(FPS, motion=False))
            swaps["still"] += count_swaps(clip.truth, still)
            naive = nearest_centroid_ids(clip.frames, clip.body_length)
            swaps["centroid"] += count_swaps(clip.truth, naive)
        per = {k: 1000 * v / (args.frames * args.seeds) for k, v in swaps.items()}
        ms = 1000 * seconds / (args.frames * args.seeds)
        print(f"{animals:>7} {per['tracker']:>8.2f} {per['known']:>8.2f} {per['still']:>10.1f} "
              f"{per['centroid']:>9.1f} {ms:>9.3f} {ids_used / args.seeds:>5.0f}")  # fmt: skip
    print("ids: track ids used per clip by the unbounded tracker (false positives get their own)")
    clips = 10 * args.seeds
    print(f"\ntwo animals crossing in an X, hidden 4 frames where they cross ({clips} clips per "
          "angle, ids capped at 2): clips with a swap")  # fmt: skip
    still = TrackerParams.for_fps(FPS, motion=False)
    for angle in (10, 20, 45):
        runs = [crossing_clip(angle, seed) for seed in range(clips)]
        tracker = sum(count_swaps(c.truth, link_tracks(c.frames, K, 2)) > 0 for c in runs)
        without = sum(count_swaps(c.truth, link_tracks(c.frames, K, 2, still)) > 0 for c in runs)
        naive = sum(
            count_swaps(c.truth, nearest_centroid_ids(c.frames, c.body_length)) > 0 for c in runs
        )
        print(f"  {angle:>3}°: tracker {tracker}, no motion {without}, centroid {naive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
