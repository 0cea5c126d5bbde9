"""Structure-aware mutations of real files, and the property every reader must keep.

Shared by the fuzz tests (tests/core/formats/test_fuzz_importers.py, tests/ml/
test_model_file_fuzz.py, tests/core/test_project_open_fuzz.py) and by
benchmarks/bench_fuzz.py, which runs the same cases longer and counts them.

The mutations start from real seed files (../shared/peer-files, ../shared/datasets) and change
what a careless tool or an attacker would: wrong types, missing and extra keys, huge and
non-finite numbers, deep nesting, odd Unicode, truncation and flipped bytes.

The property (`Outcome.check`): a reader either succeeds or raises the project's own error
type with a message naming one of the input files, within a time limit; and when it refuses,
the project store (or the file) is exactly as before.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from conftest import time_limit
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# CI: a few hundred cases in about a minute, the same cases on every run.
CI_SETTINGS = settings(
    deadline=None, derandomize=True, database=None, print_blob=True,
    suppress_health_check=list(HealthCheck),
)  # fmt: skip
CASE_SECONDS = 20  # a case running longer than this is a hang

_DEEP = "\u2063DEEP\u2063"  # placeholder for nesting too deep for json.dumps itself

# Values a file might hold where something else was expected.
_SPECIAL = [
    10**400, -(10**400), 2**63, 2**64, -(2**63) - 1, 10**19, 1e308, -1e308, 5e-324, -0.0,
    float("nan"), float("inf"), float("-inf"), True, False, None, "", " ", "0", "1e999",
    "NaN", "\x1b[31mred\x1b[0m", "\x1b]0;title\x07", "=HYPERLINK(\"x\")", "+1", "-1", "@x",
    "../../../etc/passwd", "/dev/zero", "C:\\Windows\\x.png", "a\x00b", "\ud800", "\u202e",
    "x" * 100_000, "ǅ̈\u0301\u200d👩\u200d🔬", [], {}, [[]], {"": None},
]  # fmt: skip
_SCALARS = st.one_of(
    st.sampled_from(_SPECIAL),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=24),
)
HOSTILE_VALUES = st.one_of(
    st.sampled_from(_SPECIAL),  # twice: the values that broke readers before come up often
    st.sampled_from(_SPECIAL),
    _SCALARS,
    st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                 | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=6),
    st.integers(min_value=40, max_value=20_000).map(lambda n: f"{_DEEP}{n}"),
)  # fmt: skip


def _slots(tree: object, max_depth: int) -> list[tuple[object, object]]:
    """Every (container, key) in a JSON tree down to `max_depth`, found without recursion."""
    out, todo = [], [(tree, 1)]
    while todo:
        node, depth = todo.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            out.append((node, key))
            if isinstance(value, (dict, list)) and depth < max_depth:
                todo.append((value, depth + 1))
    return out


def mutate_tree(draw, tree: object, at_most: int = 3) -> object:
    """Apply 1..at_most structural changes to a JSON tree (a deep copy of it)."""
    tree = json.loads(json.dumps(tree))
    for _ in range(draw(st.integers(1, at_most))):
        # A depth limit drawn first: the few keys near the top (ids, names, the skeleton) are
        # as likely to change as the many numbers deep down.
        depth = draw(st.integers(1, 6))
        slots = _slots(tree, depth) if isinstance(tree, (dict, list)) else []
        if not slots:
            return draw(HOSTILE_VALUES)
        node, key = slots[draw(st.integers(0, len(slots) - 1))]
        op = draw(st.sampled_from(["replace", "replace", "delete", "add", "wrap", "copy"]))
        if op == "replace":
            node[key] = draw(HOSTILE_VALUES)
        elif op == "delete":
            del node[key]
        elif op == "add":
            if isinstance(node, dict):
                node[draw(st.text(max_size=12))] = draw(HOSTILE_VALUES)
            else:
                node.insert(key, draw(HOSTILE_VALUES))
        elif op == "wrap":
            node[key] = draw(st.sampled_from([[node[key]], {"value": node[key]}]))
        else:  # a list element repeated: duplicate ids, points, images
            value = node[key]
            if isinstance(node, list):
                node.extend([value] * draw(st.integers(1, 3)))
    return tree


def dump_json(tree: object) -> bytes:
    # Raw Unicode (a lone surrogate becomes bytes that are not UTF-8: also a case to refuse).
    text = json.dumps(tree, ensure_ascii=False)
    while _DEEP in text:  # "\u2063DEEP\u2063123" in quotes → 123 levels of nested lists
        start = text.index('"' + _DEEP)
        end = text.index('"', start + 1)
        depth = int(text[start + 1 + len(_DEEP) : end])
        text = text[:start] + "[" * depth + "]" * depth + text[end + 1 :]
    return text.encode("utf-8", "surrogatepass")


def mutate_bytes(draw, data: bytes) -> bytes:
    """Truncate, flip bytes or splice junk: what a broken copy or a hostile editor leaves."""
    op = draw(st.sampled_from(["truncate", "flip", "splice"]))
    if not data:
        return draw(st.binary(max_size=64))
    if op == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    out = bytearray(data)
    if op == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(out) - 1))
            out[i] ^= draw(st.integers(1, 255))
        return bytes(out)
    i = draw(st.integers(0, len(out)))
    return bytes(out[:i]) + draw(st.binary(min_size=1, max_size=64)) + bytes(out[i:])


def mutate_json_file(draw, seed: bytes) -> bytes:
    """Mostly structural changes, sometimes bytes on top (truncation, flips)."""
    tree = mutate_tree(draw, json.loads(seed))
    data = dump_json(tree)
    if draw(st.integers(0, 4)) == 0:
        data = mutate_bytes(draw, data)
    return data


def mutate_csv_text(draw, seed: str) -> bytes:
    """Cell- and row-level changes to a CSV (DeepLabCut), sometimes bytes on top."""
    rows = list(csv.reader(io.StringIO(seed)))
    for _ in range(draw(st.integers(1, 3))):
        r = draw(st.integers(0, len(rows) - 1))
        op = draw(st.sampled_from(["cell", "cell", "drop", "repeat", "extend", "shorten"]))
        if op == "cell" and rows[r]:
            c = draw(st.integers(0, len(rows[r]) - 1))
            rows[r][c] = str(draw(_SCALARS))
        elif op == "drop":
            del rows[r]
        elif op == "repeat":
            rows.insert(r, list(rows[r]))
        elif op == "extend":
            rows[r] += [str(draw(_SCALARS)) for _ in range(draw(st.integers(1, 3)))]
        elif rows[r]:
            del rows[r][draw(st.integers(0, len(rows[r]) - 1)) :]
        if not rows:
            rows = [[]]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    data = buffer.getvalue().encode("utf-8", "surrogatepass")
    return mutate_bytes(draw, data) if draw(st.integers(0, 4)) == 0 else data


def mutate_lines(draw, seed: str) -> bytes:
    """Token-level changes to whitespace-separated lines (YOLO labels)."""
    lines = [line.split() for line in seed.splitlines()] or [[]]
    for _ in range(draw(st.integers(1, 3))):
        r = draw(st.integers(0, len(lines) - 1))
        if lines[r] and draw(st.booleans()):
            lines[r][draw(st.integers(0, len(lines[r]) - 1))] = str(draw(_SCALARS)).replace(
                "\n", " "
            )
        else:
            lines.insert(r, list(lines[r]) + [str(draw(_SCALARS))])
    data = "\n".join(" ".join(tokens) for tokens in lines).encode("utf-8", "surrogatepass")
    return mutate_bytes(draw, data) if draw(st.integers(0, 4)) == 0 else data


def store_dump(db: Path) -> str:
    """Every row and schema line of a project store, to compare before and after."""
    if not db.exists():
        return "<no store>"
    with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as conn:
        return "\n".join(conn.iterdump())


@dataclass
class Outcome:
    """What happened to the cases of one reader; the bench prints it, the tests assert on it."""

    reader: str
    counts: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def check(self, run, names: list[Path], state, errors: tuple[type, ...],
              strict: bool = True) -> None:  # fmt: skip
        """Run one case: `run()` must succeed or raise one of `errors` naming a path in
        `names`; `state()` (a store dump, a file hash) must not change when it refuses.
        Anything else is recorded and, when `strict`, raised."""
        before = state()
        self.counts["cases"] += 1
        try:
            with time_limit(CASE_SECONDS):
                run()
            self.counts["accepted"] += 1
            return
        except TimeoutError:
            problem = "hang"
        except errors as exc:
            message = str(exc)
            if not any(str(n) in message for n in names):
                problem = f"unnamed: {type(exc).__name__}: {message[:300]}"
            elif state() != before:
                problem = f"changed: {message[:300]}"
            else:
                self.counts["refused"] += 1
                return
        except Exception as exc:  # noqa: BLE001 - the point is to catch what escapes
            problem = f"unexpected {type(exc).__name__}: {str(exc)[:300]}"
        kind = problem.split(":")[0].split()[0]
        self.counts[kind] += 1
        self.failures.append(problem)
        if strict:
            raise AssertionError(f"{self.reader}: {problem}")
