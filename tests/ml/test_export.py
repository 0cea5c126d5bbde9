"""Exports are run with their own runtime right after writing and compared with the app's
model; a failed or inaccurate conversion raises and leaves no file behind."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from conftest import TINY_PARAMS as PARAMS  # noqa: E402
from conftest import tiny_model  # noqa: E402

from kpstudio.core.skeleton import Skeleton  # noqa: E402
from kpstudio.ml import export  # noqa: E402
from kpstudio.ml.export import ExportError, export_model  # noqa: E402
from kpstudio.ml.model_file import save_model_file  # noqa: E402
from kpstudio.ml.predictor import Predictor  # noqa: E402


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.kpmodel"
    save_model_file(path, tiny_model(0), arch="default", params=PARAMS, input_size=64,
                    skeleton=Skeleton.create(["a", "b", "c"]))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def predictor(model_path):
    return Predictor.from_file(model_path)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(
    "name, kind, expected_kind, runtime",
    [
        ("model.keras", None, "keras", "keras"),
        ("saved", None, "savedmodel", "saved_model"),
        ("model.tflite", None, "tflite", "Interpreter"),
        ("model16.tflite", "tflite-fp16", "tflite-fp16", "Interpreter"),
    ],
)
def test_exports_agree_with_the_app(predictor, tmp_path, name, kind, expected_kind, runtime):
    result = export_model(predictor, tmp_path / name, kind)
    assert result.kind == expected_kind and result.path == tmp_path / name
    assert result.checked_on == 3 and runtime in result.note
    assert 0 <= result.max_px_diff <= 0.5
    if expected_kind != "tflite-fp16":
        assert result.max_px_diff < 0.01  # float32 all the way: only rounding differs
    assert leftovers(tmp_path) == [name]  # no scratch folder left behind
    if expected_kind == "savedmodel":
        assert (tmp_path / name / "saved_model.pb").is_file()
    else:
        assert (tmp_path / name).stat().st_size > 10_000
    if "tflite" in expected_kind and importlib.util.find_spec("ai_edge_litert"):
        assert "ai_edge_litert" in result.note  # the standalone runtime, not TF's copy


def test_onnx_export_agrees_with_the_app(model_path, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    samples = export.default_sample_images()[:2]
    result = export_model(model_path, tmp_path / "model.onnx", sample_images=samples)
    assert result.kind == "onnx" and "onnxruntime" in result.note
    assert result.checked_on == 2 and result.max_px_diff < 0.01
    assert leftovers(tmp_path) == ["model.onnx"]


def test_a_model_with_context_blocks_exports_and_agrees(tmp_path):
    """The plan's context blocks (dilated convolutions at stride 32) convert to every runtime."""
    params = {**PARAMS, "context": 2}
    path = tmp_path / "context.kpmodel"
    save_model_file(path, tiny_model(1, context=2), arch="default", params=params,
                    input_size=64, skeleton=Skeleton.create(["a", "b", "c"]))  # fmt: skip
    targets = ["model.tflite"]
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("tf2onnx"):
        targets.append("model.onnx")
    for name in targets:
        result = export_model(path, tmp_path / name)
        assert result.max_px_diff < 0.01, name



def test_a_model_read_around_its_peaks_and_guided_by_relations_exports_and_agrees(tmp_path):
    """The peak reading (an argmax and a window in the graph) converts to every runtime..."""
    from kpstudio.ml.models import PEAK_RADIUS
    from kpstudio.ml.peak_reading import soft_argmax_layers

    # ... and so does the relations' second reading (a gather, a one-hot, a second softmax).
    relations = [[1, 0, 0, 0, 1.0, 2.0, 6.0], [2, 1, 0, 0, -0.5, 40.0, 9.0]]
    params = {**PARAMS, "peak": PEAK_RADIUS, "relations": relations}
    path = tmp_path / "peak.kpmodel"
    save_model_file(path, tiny_model(2, peak=PEAK_RADIUS, relations=relations), arch="default",
                    params=params, input_size=64,
                    skeleton=Skeleton.create(["a", "b", "c"]))  # fmt: skip
    loaded = Predictor.from_file(path)
    layers = soft_argmax_layers(loaded.model)
    assert [(layer.peak, layer.relations) for layer in layers] == [(PEAK_RADIUS, relations)]
    targets = ["model.tflite", "model.keras"]
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("tf2onnx"):
        targets.append("model.onnx")
    for name in targets:
        result = export_model(loaded, tmp_path / name)
        assert result.max_px_diff < 0.01, name

def test_onnx_without_its_converter_says_what_to_install(predictor, tmp_path, monkeypatch):
    real = export._version
    monkeypatch.setattr(export, "_version", lambda d: "?" if d == "tf2onnx" else real(d))
    with pytest.raises(ExportError, match="tf2onnx.*pip install tf2onnx"):
        export_model(predictor, tmp_path / "model.onnx")
    assert leftovers(tmp_path) == []


def test_an_export_that_disagrees_is_deleted_and_reported(predictor, tmp_path, monkeypatch):
    other = tiny_model(seed=9)  # a "converter" that silently swapped the weights
    monkeypatch.setitem(export._WRITERS, "keras", lambda model, path: other.save(path))
    with pytest.raises(ExportError, match=r"disagrees .* by up to [0-9.]+ px") as err:
        export_model(predictor, tmp_path / "model.keras")
    assert "deleted" in str(err.value)
    assert leftovers(tmp_path) == []


def test_a_failing_converter_leaves_nothing(predictor, tmp_path, monkeypatch):
    def crash(model, path):
        Path(path).write_bytes(b"half a file")
        raise RuntimeError("converter crashed halfway")

    monkeypatch.setitem(export._WRITERS, "tflite", crash)
    with pytest.raises(ExportError, match="tflite converter failed.*crashed halfway"):
        export_model(predictor, tmp_path / "model.tflite")
    assert leftovers(tmp_path) == []


def test_a_corrupt_artifact_is_caught_by_its_runtime(predictor, tmp_path, monkeypatch):
    monkeypatch.setitem(export._WRITERS, "tflite", lambda m, p: Path(p).write_bytes(b"\0" * 64))
    with pytest.raises(ExportError, match="runtime could not run it"):
        export_model(predictor, tmp_path / "model.tflite")
    assert leftovers(tmp_path) == []


def test_a_failed_export_keeps_the_previous_file(predictor, tmp_path, monkeypatch):
    out = tmp_path / "model.keras"
    out.write_bytes(b"previous export")
    monkeypatch.setitem(export._WRITERS, "keras", lambda m, p: tiny_model(3).save(p))
    with pytest.raises(ExportError):
        export_model(predictor, out)
    assert out.read_bytes() == b"previous export"


def test_bad_targets_are_refused_before_converting(predictor, tmp_path):
    with pytest.raises(ExportError, match="cannot tell the export format"):
        export_model(predictor, tmp_path / "model.pt")
    with pytest.raises(ExportError, match="unknown export kind"):
        export_model(predictor, tmp_path / "m.bin", kind="coreml")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "keep.jpg").write_bytes(b"x")
    with pytest.raises(ExportError, match="not a SavedModel"):
        export_model(predictor, tmp_path / "photos", kind="savedmodel")
    assert (tmp_path / "photos" / "keep.jpg").exists()


def test_export_kinds_cover_every_writer_and_runner():
    assert set(export.EXPORT_KINDS) == set(export._WRITERS) == set(export._RUNNERS)
