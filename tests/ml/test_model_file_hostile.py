"""Crafted .kpmodel files (issue 11): refused naming the file before TensorFlow builds anything
from them, never an out-of-memory crash, a RecursionError or a NotImplementedError."""

from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from conftest import TINY_PARAMS, time_limit, tiny_model  # noqa: E402

from kpstudio.core.skeleton import Skeleton  # noqa: E402
from kpstudio.ml import models  # noqa: E402
from kpstudio.ml.model_file import (  # noqa: E402
    ModelFileError,
    load_model_file,
    read_manifest,
    save_model_file,
)
from kpstudio.ml.weight_layout import expected_weight_shapes  # noqa: E402

SKELETON = Skeleton.create(["nose", "left ear", "right ear"])


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.kpmodel"
    save_model_file(path, tiny_model(), arch="default", params=TINY_PARAMS, input_size=64,
                    skeleton=SKELETON)  # fmt: skip
    return path


@pytest.fixture
def never_built(monkeypatch):
    """Building a model from a crafted file is the failure: it must be refused before."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a model was built from a crafted file: {args} {kwargs}")

    monkeypatch.setattr(models, "build_model", refuse)


def with_manifest(src: Path, dst: Path, text: str) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        zout.writestr("manifest.json", text)
        zout.writestr("model.weights.h5", zin.read("model.weights.h5"))
    return dst


def edited(src: Path, dst: Path, **changes) -> Path:
    with zipfile.ZipFile(src) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    manifest.update(changes)
    return with_manifest(src, dst, json.dumps(manifest))


def refused(path: Path, match: str) -> None:
    for load in (read_manifest, load_model_file):
        with pytest.raises(ModelFileError, match=match) as err:
            load(path)
        assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "changes",
    [
        {"architecture": {"name": "default", "params": {"width": 10**6, "decoder": 16}}},
        {"architecture": {"name": "default", "params": {"width": 8, "decoder": 10**7}}},
        {"architecture": {"name": "default", "params": TINY_PARAMS}, "input_size": 4096},
        {"architecture": {"name": "seed", "params": {}}, "input_size": 4096},
        {"architecture": {"name": "default", "params": {"width": 8.5}}},
    ],
    ids=["width", "decoder", "input-size", "seed-dense-layer", "float-width"],
)
def test_an_enormous_model_is_refused_before_it_is_built(saved, tmp_path, never_built, changes):
    refused(edited(saved, tmp_path / "huge.kpmodel", **changes), "do not fit")


@pytest.mark.parametrize("relations,why", [
    ([[7, 0, 0, 0, 1.0, 0.0, 2.0]], "names a keypoint"),
    ([[1, 0, 0, 0, 1.0, 0.0, -1.0]], "spread above 0"),
    ([[1, 0, 0, 0, 1.0, 0.0, 2.0]] * 7, "at most 6 rows"),
    ([[1, 0, 0, 0, {"a": 1}, 0.0, 2.0]], "finite"),
    ("relations", "a list"),
])  # fmt: skip
def test_relations_a_model_cannot_read_are_refused(saved, tmp_path, never_built, relations, why):
    params = {**TINY_PARAMS, "relations": relations}
    bad = edited(saved, tmp_path / "relations.kpmodel",
                 architecture={"name": "default", "params": params})  # fmt: skip
    refused(bad, why)


def test_recorded_shapes_are_checked_before_building(saved, tmp_path, never_built):
    manifest = read_manifest(saved)
    manifest["weights"]["shapes"][0] = [3, 3, 3, 9]
    bad = with_manifest(saved, tmp_path / "shapes.kpmodel", json.dumps(manifest))
    with pytest.raises(ModelFileError, match="of other shapes"):
        load_model_file(bad)


def test_a_manifest_nested_thousands_deep(saved, tmp_path):
    manifest = read_manifest(saved)
    text = json.dumps(manifest)[:-1] + ', "metrics": ' + "[" * 50_000 + "]" * 50_000 + "}"
    refused(with_manifest(saved, tmp_path / "deep.kpmodel", text), "nested too deeply")


def test_a_5000_digit_integer_in_the_manifest(saved, tmp_path):
    text = json.dumps(read_manifest(saved))[:-1] + ', "run": ' + "9" * 5000 + "}"
    refused(with_manifest(saved, tmp_path / "digits.kpmodel", text), "manifest cannot be read")


def patch_headers(path: Path, flags: int | None = None, method: int | None = None,
                  name: tuple[bytes, bytes] | None = None) -> None:  # fmt: skip
    """Rewrite every member's flags / compression method / name bytes in both zip headers."""
    data = bytearray(path.read_bytes())
    for signature, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        at = data.find(signature)
        while at >= 0:
            if flags is not None:
                struct.pack_into("<H", data, at + flag_at, flags)
            if method is not None:
                struct.pack_into("<H", data, at + method_at, method)
            at = data.find(signature, at + 4)
    if name is not None:
        data = bytearray(bytes(data).replace(*name))
    path.write_bytes(bytes(data))


def test_a_member_name_that_is_not_utf8(saved, tmp_path):
    bad = tmp_path / "name.kpmodel"
    with zipfile.ZipFile(saved) as zin, zipfile.ZipFile(bad, "w") as zout:
        zout.writestr("mänifest.json", zin.read("manifest.json"))  # flagged UTF-8 (0x800)
        zout.writestr("model.weights.h5", zin.read("model.weights.h5"))
    patch_headers(bad, name=("mänifest".encode(), b"m\xff\xfenifest"))
    refused(bad, "damaged or malformed")


@pytest.mark.parametrize(
    "flags, method", [(0, 98), (0, 93), (0x20, 0), (0x40, 0)], ids=["ppmd", "zstd", "patch", "aes"]
)
def test_unsupported_zip_methods_and_flags(saved, tmp_path, flags, method):
    bad = tmp_path / "method.kpmodel"
    bad.write_bytes(saved.read_bytes())
    patch_headers(bad, flags=flags, method=method)
    refused(bad, "compression method|encrypted")


def test_a_named_pipe_named_like_a_model(tmp_path):
    fifo = tmp_path / "model.kpmodel"
    os.mkfifo(fifo)
    with time_limit(20):  # opening it used to wait for a writer forever: fail, do not hang
        refused(fifo, "named pipe")


@pytest.mark.parametrize(
    "arch, k, size, params",
    [("default", 3, 64, TINY_PARAMS), ("default", 17, 256, {}), ("seed", 5, 16, {}),
     ("default", 2, 96, {"width": 5, "decoder": 7, "bn_momentum": 0.5}),
     ("default", 4, 64, {**TINY_PARAMS, "stride": 2}),
     ("default", 4, 64, {**TINY_PARAMS, "context": 3, "hints": True})],
)  # fmt: skip
def test_computed_shapes_are_those_keras_builds(arch, k, size, params):
    model = models.build_model(arch, k, size, **params)
    built = sorted([int(d) for d in w.shape] for w in model.weights)
    assert built == sorted(expected_weight_shapes(arch, params, k, size))


def test_the_strides_a_model_file_may_ask_for_are_those_the_model_builds():
    from kpstudio.core import plan
    from kpstudio.ml.weight_layout import HEATMAP_STRIDES, MAX_CONTEXT

    assert HEATMAP_STRIDES == models.HEATMAP_STRIDES
    # and the context blocks: the plan (core, no TensorFlow) keeps its own copy of the bound
    assert MAX_CONTEXT == models.MAX_CONTEXT == plan.MAX_CONTEXT
