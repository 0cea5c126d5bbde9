"""The fuzz suite, run further: the same mutations of real seed files as the tests, many more
cases per reader, random (not derandomized) so each run tries new ones.

Prints per reader: cases tried, accepted, refused (our error naming the file, store
unchanged), unexpected exceptions, hangs (a case over the per-case limit), refusals that named
no file, changed projects (a refusal that still altered the store); then the first few problems.
Exit status 1 when any problem was found.

    python benchmarks/bench_fuzz.py            # CI's counts, once
    python benchmarks/bench_fuzz.py --long     # 2,000 cases per importer, 300 model, 1,000 store
    python benchmarks/bench_fuzz.py --cases 500 --readers coco,yolo
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # conftest (SHARED, tiny_model) and fuzzing

import fuzzing  # noqa: E402
from conftest import SHARED  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PROBLEMS = ("unexpected", "hang", "unnamed", "changed")
LONG = {"coco": 2000, "labelme": 2000, "dlc": 2000, "yolo": 2000, "model": 300, "project": 1000}


def _module(relative: str):
    path = REPO / "tests" / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _runners(work: Path) -> dict:
    """reader → (CI case count, make the seed, run one case from hypothesis' draw)."""
    importers = _module("core/formats/test_fuzz_importers.py")
    models = _module("ml/test_model_file_fuzz.py")
    projects = _module("core/test_project_open_fuzz.py")
    out = {}
    for fmt in importers.SEEDS:

        def make(fmt=fmt):
            (work / fmt).mkdir()
            return importers.SEEDS[fmt](work / fmt)

        def one(seed, outcome, draw, fmt=fmt):
            seed.run(outcome, importers.CASES[fmt](draw, seed), strict=False)

        out[fmt] = (importers.CI_EXAMPLES[fmt], make, one)
    out["model"] = (
        models.CI_EXAMPLES,
        lambda: models.ModelSeed(Path(tempfile.mkdtemp(dir=work))),
        lambda seed, outcome, draw: seed.run(outcome, seed.case(draw), strict=False),
    )
    coco = SHARED / "peer-files" / "coco" / "mmpose-fly" / "test_fly.json"
    out["project"] = (
        projects.CI_EXAMPLES,
        lambda: projects.ProjectSeed(Path(tempfile.mkdtemp(dir=work)), coco),
        lambda seed, outcome, draw: seed.run(outcome, *seed.case(draw), strict=False),
    )
    return out


def _run(name: str, count: int, make, one, derandomize: bool) -> fuzzing.Outcome:
    seed, outcome = make(), fuzzing.Outcome(name)

    @settings(max_examples=count, deadline=None, database=None, derandomize=derandomize,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.data())
    def case(data):
        one(seed, outcome, data.draw)

    case()
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="many more cases per reader")
    parser.add_argument("--cases", type=int, default=None, help="cases per reader")
    parser.add_argument("--readers", default=None, help="comma-separated (default: all)")
    parser.add_argument("--case-seconds", type=float, default=fuzzing.CASE_SECONDS,
                        help="a case running longer is counted as a hang")  # fmt: skip
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"{SHARED} (the seed files) is not present", file=sys.stderr)
        return 2
    fuzzing.CASE_SECONDS = args.case_seconds
    work = Path(tempfile.mkdtemp(prefix="kpstudio-fuzz-"))
    runners = _runners(work)
    chosen = args.readers.split(",") if args.readers else list(runners)
    found = 0
    print(f"{'reader':<10}{'cases':>7}{'accepted':>10}{'refused':>9}{'unexpected':>12}"
          f"{'hangs':>7}{'unnamed':>9}{'changed':>9}{'s':>7}")  # fmt: skip
    for name in chosen:
        ci_count, make, one = runners[name]
        count = args.cases or (LONG[name] if args.long else ci_count)
        start = time.perf_counter()
        outcome = _run(name, count, make, one, derandomize=not args.long)
        c = outcome.counts
        print(f"{name:<10}{c['cases']:>7}{c['accepted']:>10}{c['refused']:>9}"
              f"{c['unexpected']:>12}{c['hang']:>7}{c['unnamed']:>9}{c['changed']:>9}"
              f"{time.perf_counter() - start:>7.1f}", flush=True)  # fmt: skip
        for problem in outcome.failures[:5]:
            print(f"    {problem[:240]}")
        found += sum(c[p] for p in PROBLEMS)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
