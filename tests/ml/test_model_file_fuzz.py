"""Fuzzing the .kpmodel loader (issue 11): a tiny saved model whose manifest and zip are
mutated; loading succeeds or raises ModelFileError naming the file, and never alters it."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import struct
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from conftest import TINY_PARAMS, tiny_model  # noqa: E402
from fuzzing import CI_SETTINGS, Outcome, mutate_bytes, mutate_json_file  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kpstudio.core.skeleton import Skeleton  # noqa: E402
from kpstudio.ml.model_file import ModelFileError, load_model_file, save_model_file  # noqa: E402

CI_EXAMPLES = 60
# Where each zip header holds its flags, followed by the compression method.
_FLAG_OFFSETS = ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8))


class ModelSeed:
    """A tiny saved .kpmodel and the cases made from it."""

    def __init__(self, work: Path):
        self.work = work
        self.path = work / "seed.kpmodel"
        save_model_file(self.path, tiny_model(), arch="default", params=TINY_PARAMS,
                        input_size=64, skeleton=Skeleton.create(["nose", "left ear", "tail"]),
                        metrics={"val_px": 1.5})  # fmt: skip
        with zipfile.ZipFile(self.path) as zf:
            self.members = {name: zf.read(name) for name in zf.namelist()}
        self.counter = itertools.count()

    def case(self, draw) -> bytes:
        """The bytes of a mutated model file: its manifest, its zip, or both."""
        part = draw(st.sampled_from(["manifest", "manifest", "headers", "bytes", "members"]))
        members = dict(self.members)
        if part == "manifest":
            members["manifest.json"] = mutate_json_file(draw, members["manifest.json"])
        elif part == "members":  # renamed, dropped or extra members
            name = draw(st.sampled_from(sorted(members)))
            new = draw(st.sampled_from(["../evil", "/abs", "config.json", "a/", name + "x"]))
            members[new] = members.pop(name) if draw(st.booleans()) else b"x"
        data = _zip(members)
        if part == "headers":
            data = _patch_headers(data, draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 99)))
        elif part == "bytes":
            data = mutate_bytes(draw, data)
        return data

    def run(self, outcome: Outcome, data: bytes, strict: bool = True) -> None:
        path = self.work / f"case{next(self.counter)}.kpmodel"
        path.write_bytes(data)
        outcome.check(lambda: load_model_file(path), [path],
                      lambda: hashlib.sha256(path.read_bytes()).hexdigest(), (ModelFileError,),
                      strict)  # fmt: skip
        path.unlink()


def _zip(members: dict[str, bytes]) -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _patch_headers(data: bytes, flags: int, method: int) -> bytes:
    out = bytearray(data)
    for signature, flag_at in _FLAG_OFFSETS:
        at = out.find(signature)
        while at >= 0:
            struct.pack_into("<HH", out, at + flag_at, flags, method)
            at = out.find(signature, at + 4)
    return bytes(out)


@pytest.fixture(scope="module")
def seed(tmp_path_factory) -> ModelSeed:
    return ModelSeed(tmp_path_factory.mktemp("model-fuzz"))


def test_mutated_model_files_load_or_are_refused_cleanly(seed):
    outcome = Outcome("model file")

    @settings(CI_SETTINGS, max_examples=CI_EXAMPLES)
    @given(st.data())
    def case(data):
        seed.run(outcome, seed.case(data.draw))

    case()
    assert outcome.counts["cases"] >= CI_EXAMPLES and outcome.counts["refused"] > 0
    assert json.loads(seed.members["manifest.json"])["format"] == "kpstudio-model"
