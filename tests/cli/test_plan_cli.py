"""`kpstudio plan` and the train command's overrides of the plan, recorded with the run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kpstudio.cli import main


def test_plan_explains_each_choice(demo, capsys):
    assert main(["plan", str(demo)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"plan for {demo}: input_size ")
    for topic in ("labeled images", "scale", "cells at stride", "batches of", "augmentation",
                  "epochs"):  # fmt: skip
        assert topic in out
    assert main(["plan", str(demo), "--json", "--minutes", "2"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["input_size"] % 32 == 0 and plan["stride"] in (2, 4)
    assert plan["fingerprint"]["images"] == 6
    assert "2 minutes" in plan["sentences"][-1]


def test_plan_of_a_missing_project_is_a_clear_error(tmp_path, capsys):
    assert main(["plan", str(tmp_path / "nowhere")]) == 1
    assert "nowhere" in capsys.readouterr().err


def test_train_records_the_plan_and_the_overrides(demo):
    pytest.importorskip("tensorflow")
    result = subprocess.run(
        [sys.executable, "-m", "kpstudio.cli", "train", demo, "--epochs", "1", "--json",
         "--input-size", "64", "--crop", "0", "--stride", "2",
         "--set", "augmentation.rotation_deg=5", "--set", "batch_size=4"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    final = json.loads(result.stdout.splitlines()[-1])
    run_dir = demo / "runs" / final["run"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["overrides"] == {"input_size": 64, "crop_size": 0, "stride": 2, "epochs": 1,
                                   "batch_size": 4, "augmentation.rotation_deg": 5.0}  # fmt: skip
    assert config["params"] == {"stride": 2} and config["augmentation"]["rotation_deg"] == 5.0
    assert config["plan"]["sentences"]
    from kpstudio.ml.model_file import read_manifest

    manifest = read_manifest(final["model"])
    assert manifest["plan"] == config["plan"] and manifest["overrides"] == config["overrides"]
    assert manifest["architecture"]["params"] == {"stride": 2}
    bad = subprocess.run([sys.executable, "-m", "kpstudio.cli", "train", demo, "--set", "x=1"],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 1 and "unknown setting 'x'" in bad.stderr


def test_train_from_the_active_model_keeps_its_settings_and_starts_from_its_weights(demo):
    pytest.importorskip("tensorflow")

    def train(*extra):
        result = subprocess.run(
            [sys.executable, "-m", "kpstudio.cli", "train", demo, "--epochs", "1", "--json",
             *extra], capture_output=True, text=True)  # fmt: skip
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.splitlines()[-1])

    first = train("--input-size", "64", "--crop", "0", "--set", "batch_size=4")
    second = train("--from", "active", "--follow")
    config = json.loads((demo / "runs" / second["run"] / "config.json").read_text())
    assert config["warm_start"] == first["model"]
    assert config["input_size"] == 64 and config["batch_size"] == 4  # the first run's settings
    assert any("started from the weights" in note for note in second["notes"])
    bad = subprocess.run([sys.executable, "-m", "kpstudio.cli", "train", demo, "--from",
                          "nosuchrun"], capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 1 and "nosuchrun" in bad.stderr
