"""The .kpmodel file: a round trip that predicts identically in a fresh process, and refusal
of everything that is not exactly what kpstudio wrote (tampering, traversal, foreign files)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import (
    REPO,  # noqa: E402
    tiny_model,  # noqa: E402
)
from conftest import TINY_PARAMS as PARAMS  # noqa: E402
from PIL import Image  # noqa: E402

from kpstudio.core.skeleton import Skeleton  # noqa: E402
from kpstudio.ml import model_file  # noqa: E402
from kpstudio.ml.model_file import (  # noqa: E402
    ModelFileError,
    load_model_file,
    read_manifest,
    save_model_file,
)

SKELETON = Skeleton.create(["nose", "left ear", "right ear"], edges=[("nose", "left ear")],
                           flip_pairs=[("left ear", "right ear")])  # fmt: skip


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = tiny_model()
    path = tmp_path_factory.mktemp("model") / "tiny.kpmodel"
    metrics = {"val_px": np.float32(4.25), "per_keypoint_px": np.array([1.0, 2.0, 3.0])}
    save_model_file(path, model, arch="default", params=PARAMS, input_size=64,
                    skeleton=SKELETON, metrics=metrics, extra={"run_id": "run-7"})  # fmt: skip
    return path, model


def rezip(src: Path, dst: Path, change=None, add=None) -> Path:
    """Copy a .kpmodel, letting `change(name, data)` alter members and adding `add` members."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            zout.writestr(name, change(name, data) if change else data)
        for name, data in (add or {}).items():
            zout.writestr(name, data)
    return dst


def edit_manifest(src: Path, dst: Path, **changes) -> Path:
    def change(name, data):
        if name != "manifest.json":
            return data
        return json.dumps({**json.loads(data), **changes}).encode()

    return rezip(src, dst, change)


def test_manifest_records_what_is_needed_to_rebuild_and_trust_the_model(saved):
    path, _ = saved
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["manifest.json", "model.weights.h5"]
        weights_hash = hashlib.sha256(zf.read("model.weights.h5")).hexdigest()
    m = read_manifest(path)
    assert m["format"] == "kpstudio-model" and m["format_version"] == model_file.FORMAT_VERSION
    assert Skeleton.from_dict(m["skeleton"]) == SKELETON
    assert m["architecture"] == {"name": "default", "params": PARAMS}
    assert m["input_size"] == 64 and m["num_keypoints"] == 3
    assert m["preprocessing"]["color"] == "RGB" and m["preprocessing"]["range"] == [0, 255]
    assert m["metrics"] == {"val_px": 4.25, "per_keypoint_px": [1.0, 2.0, 3.0]}
    assert set(m["versions"]) == {"kpstudio", "tensorflow", "keras", "numpy"}
    model = saved[1]
    shapes = [list(w.shape) for w in model.weights]
    assert m["weights"] == {"file": "model.weights.h5", "sha256": weights_hash, "shapes": shapes}
    assert m["run_id"] == "run-7" and m["created"]


def test_loaded_model_has_the_saved_weights(saved):
    path, model = saved
    manifest, loaded = load_model_file(path)
    assert manifest == read_manifest(path)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_fresh_process_predicts_what_the_saving_process_predicted(saved, tmp_path):
    from kpstudio.ml.predictor import Predictor

    path, model = saved
    image = np.random.default_rng(1).integers(0, 256, (120, 200, 3), dtype=np.uint8)
    image_path = tmp_path / "frame.png"
    Image.fromarray(image).save(image_path)
    here = Predictor(model, read_manifest(path)).predict_files([image_path])[0][0]

    script = (
        "import json, sys\n"
        "from kpstudio.ml.predictor import Predictor\n"
        "p = Predictor.from_file(sys.argv[1]).predict_files([sys.argv[2]])[0][0]\n"
        "print(json.dumps({'xy': p.xy.tolist(), 'confidence': p.confidence.tolist()}))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script, str(path), str(image_path)],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    there = json.loads(done.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(there["xy"], here.xy, atol=1e-4, rtol=0)
    np.testing.assert_allclose(there["confidence"], here.confidence, atol=1e-5, rtol=0)
    # The comparison means something only if other weights give another answer.
    other = Predictor(tiny_model(seed=5), read_manifest(path)).predict_array(image)
    assert np.abs(other.xy - here.xy).max() > 1.0


def test_reading_a_manifest_does_not_import_tensorflow(saved):
    path, _ = saved
    script = (
        "import sys\n"
        "from kpstudio.ml.model_file import read_manifest\n"
        "read_manifest(sys.argv[1])\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                          text=True, env=env, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_known_architectures_mirror_the_models_module():
    from kpstudio.ml.models import ARCHITECTURES

    assert model_file.KNOWN_ARCHITECTURES == ARCHITECTURES


def test_a_changed_byte_in_the_weights_is_refused(saved, tmp_path):
    path, _ = saved

    def flip(name, data):
        if name != "model.weights.h5":
            return data
        i = len(data) // 2
        return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]

    bad = rezip(path, tmp_path / "bad.kpmodel", flip)
    with pytest.raises(ModelFileError, match="weights do not match their hash") as err:
        load_model_file(bad)
    assert str(bad) in str(err.value)


def test_a_byte_flipped_inside_the_zip_is_refused(saved, tmp_path):
    path, _ = saved
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside the stored weights: the zip's CRC no longer matches
    bad = tmp_path / "flipped.kpmodel"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="damaged or was altered"):
        load_model_file(bad)


@pytest.mark.parametrize(
    "add", [{"extra.txt": b"hi"}, {"../evil": b"x"}, {"/abs/evil": b"x"}],
    ids=["extra-member", "parent-traversal", "absolute-path"],
)  # fmt: skip
def test_unexpected_members_are_refused(saved, tmp_path, add):
    path, _ = saved
    bad = rezip(path, tmp_path / "bad.kpmodel", add=add)
    for load in (read_manifest, load_model_file):
        with pytest.raises(ModelFileError, match="holds exactly"):
            load(bad)
    assert not (tmp_path.parent / "evil").exists()


def test_a_traversal_name_for_the_weights_is_refused(saved, tmp_path):
    path, _ = saved
    bad = tmp_path / "bad.kpmodel"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(bad, "w") as zout:
        zout.writestr("manifest.json", zin.read("manifest.json"))
        zout.writestr("../model.weights.h5", zin.read("model.weights.h5"))
    with pytest.raises(ModelFileError, match="holds exactly"):
        load_model_file(bad)
    assert not (tmp_path.parent / "model.weights.h5").exists()


def test_a_zip_bomb_is_refused_before_unpacking(saved, tmp_path):
    path, _ = saved
    bad = tmp_path / "bomb.kpmodel"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as zout:
        zout.writestr("manifest.json", zin.read("manifest.json"))
        zout.writestr("model.weights.h5", bytes(64 << 20))
    assert bad.stat().st_size < 1 << 20
    with pytest.raises(ModelFileError, match="zip bomb"):
        load_model_file(bad)


def test_a_file_from_a_newer_kpstudio_is_refused(saved, tmp_path):
    path, _ = saved
    bad = edit_manifest(path, tmp_path / "new.kpmodel", format_version=2)
    with pytest.raises(ModelFileError, match="newer kpstudio"):
        read_manifest(bad)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"format": "something-else"}, "not a kpstudio model file"),
        ({"num_keypoints": 4}, "keypoints but its skeleton has 3"),
        ({"architecture": {"name": "resnet9000", "params": {}}}, "does not know"),
        ({"architecture": {"name": "default", "params": {"width": [8]}}}, "parameters"),
        ({"architecture": {"name": "default", "params": {"depth": 3}}}, "do not fit"),
        ({"input_size": "64"}, "input_size"),
        ({"weights": {"file": "../x.h5", "sha256": "0" * 64}}, "weights entry"),
    ],
)
def test_invalid_manifests_are_refused(saved, tmp_path, changes, message):
    path, _ = saved
    bad = edit_manifest(path, tmp_path / "bad.kpmodel", **changes)
    with pytest.raises(ModelFileError, match=message):
        load_model_file(bad)


def test_weights_of_another_layout_are_refused_not_half_loaded(saved, tmp_path):
    """What a model file from a kpstudio whose architecture code has changed since looks like:
    its weights no longer fit the model our code builds for the same name and parameters."""
    path, _ = saved
    # The recorded layout differs from what these parameters build (width 16, not 8).
    bad = edit_manifest(path, tmp_path / "other.kpmodel",
                        architecture={"name": "default", "params": {}})  # fmt: skip
    with pytest.raises(ModelFileError, match=r"of other shapes\).*another kpstudio version"):
        load_model_file(bad)
    # A file from before the layout was recorded: Keras' own mismatch (an error, or only a
    # warning when part of the model finds nothing in the file) is refused just as clearly.
    from kpstudio.ml.models import build_model

    seed = build_model("seed", 3, 16)  # small: 1 M parameters
    seed_file = tmp_path / "seed.kpmodel"
    save_model_file(seed_file, seed, arch="seed", params={}, input_size=16, skeleton=SKELETON)
    manifest = read_manifest(seed_file)
    del manifest["weights"]["shapes"]
    bad = edit_manifest(seed_file, tmp_path / "unrecorded.kpmodel", input_size=64,
                        weights=manifest["weights"],
                        architecture={"name": "default", "params": PARAMS})  # fmt: skip
    with pytest.raises(ModelFileError, match="do not fit a 'default' model.*another kpstudio"):
        load_model_file(bad)


def test_a_keras_file_with_a_lambda_is_refused_without_running_it(tmp_path, monkeypatch):
    import keras

    from kpstudio.ml.predictor import Predictor

    canary = tmp_path / "canary.txt"

    monkeypatch.setenv("KPSTUDIO_CANARY", str(canary))
    # What a malicious Lambda could do, harmlessly. A lambda (not a def), so Keras stores its
    # bytecode in the file as an attacker's file would; no defaults (Keras 3.15 cannot reload
    # those), hence the path from the environment.
    touch = lambda x: (open(__import__("os").environ["KPSTUDIO_CANARY"], "w").close(), x)[1]  # noqa: E731
    inputs = keras.Input((8, 8, 3))
    evil = keras.Model(inputs, keras.layers.Lambda(touch)(inputs))
    evil.save(tmp_path / "evil.keras")
    # Prove the file is dangerous: unsafe Keras loading runs the Lambda.
    canary.unlink(missing_ok=True)
    keras.saving.load_model(tmp_path / "evil.keras", safe_mode=False)
    assert canary.exists()
    canary.unlink()

    disguised = tmp_path / "evil.kpmodel"
    disguised.write_bytes((tmp_path / "evil.keras").read_bytes())
    for path in (tmp_path / "evil.keras", disguised):
        for load in (read_manifest, load_model_file, Predictor.from_file):
            with pytest.raises(ModelFileError) as err:
                load(path)
            message = str(err.value)
            assert str(path) in message and "Keras model archive" in message
            assert "not a kpstudio model file" in message and "could run code" in message
    assert not canary.exists()


def test_other_foreign_or_missing_files_are_refused_clearly(tmp_path):
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"\x08\x01")
    (tmp_path / "m.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    (tmp_path / "m.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    (tmp_path / "junk.kpmodel").write_bytes(b"not a zip at all")
    cases = {
        "sm": "TensorFlow SavedModel folder",
        "m.h5": "HDF5",
        "m.tflite": "TensorFlow Lite",
        "junk.kpmodel": "not even a zip",
        "missing.kpmodel": "does not exist",
    }
    for name, what in cases.items():
        with pytest.raises(ModelFileError, match=what) as err:
            load_model_file(tmp_path / name)
        assert str(tmp_path / name) in str(err.value)


def test_saving_refuses_a_model_that_does_not_fit_and_leaves_nothing(saved, tmp_path):
    _, model = saved
    out = tmp_path / "out.kpmodel"
    two = Skeleton.create(["a", "b"])
    with pytest.raises(ValueError, match="keypoints"):
        save_model_file(out, model, arch="default", params=PARAMS, input_size=64, skeleton=two)
    with pytest.raises(ValueError, match="overwrite"):
        save_model_file(out, model, arch="default", params=PARAMS, input_size=64,
                        skeleton=SKELETON, extra={"weights": "mine"})  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_a_stride_2_model_the_plan_chose_round_trips(tmp_path):
    # The plan picks stride 2 for keypoints that sit close together; its file must load.
    from kpstudio.ml.models import build_model

    params = {**PARAMS, "stride": 2}
    model = build_model("default", 3, 64, **params)
    path = tmp_path / "s2.kpmodel"
    save_model_file(path, model, arch="default", params=params, input_size=64, skeleton=SKELETON)
    manifest, loaded = load_model_file(path)
    assert manifest["architecture"]["params"]["stride"] == 2
    image = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded(image), model(image), atol=1e-4)
