"""planned_config: the plan fills what the user left unset; what the user set wins and is
recorded; `--set KEY=VALUE` parsing."""

from __future__ import annotations

import numpy as np
import pytest

from kpstudio.core.fingerprint import fingerprint
from kpstudio.core.plan import make_plan
from kpstudio.ml.config import TrainConfig
from kpstudio.ml.planning import parse_setting, planned_config


def _objects(n=30):
    """200×200 frames, 60-px objects whose first two keypoints sit 3 px apart: the plan
    chooses stride 2 and crops."""
    rng = np.random.default_rng(0)
    shape = np.array([[0, 0], [3, 0], [30, 60], [60, 30]], dtype=float)
    for _ in range(n):
        yield 200, 200, [(shape + rng.uniform(0, 140, 2), np.full(4, 2, np.int8))]


FP = fingerprint("abcd", _objects())


def test_unset_settings_come_from_the_plan():
    plan = make_plan(FP)
    cfg = planned_config(TrainConfig(), FP)
    assert (cfg.input_size, cfg.crop_size, cfg.batch_size) == (
        plan.input_size, plan.crop_size, plan.batch_size)  # fmt: skip
    assert cfg.params == {"stride": 2} and cfg.overrides == {}
    assert cfg.augmentation.scale == plan.augmentation["scale"]
    assert cfg.plan["sentences"] == plan.sentences
    assert TrainConfig.from_dict(cfg.to_dict()).plan == cfg.plan  # stored and read back
    assert planned_config(cfg, FP) is cfg  # a resumed run keeps its settings


def test_settings_the_user_set_win_and_are_recorded():
    config = TrainConfig(input_size=96, crop_size=0, params={"stride": 4})
    config = parse_setting(config, "augmentation.rotation_deg=5")
    config = parse_setting(config, "augmentation.scale=0.1")
    config = parse_setting(config, "batch-size=4")
    cfg = planned_config(config, FP)
    assert (cfg.input_size, cfg.crop_size, cfg.batch_size, cfg.params) == (96, 0, 4, {"stride": 4})
    assert cfg.augmentation.rotation_deg == 5 and cfg.augmentation.scale == 0.1
    assert cfg.overrides == {
        "input_size": 96, "crop_size": 0, "stride": 4, "batch_size": 4,
        "augmentation.rotation_deg": 5.0, "augmentation.scale": 0.1,
    }  # fmt: skip
    # The plan is made for the input size the user chose, and stays on record.
    assert cfg.plan["input_size"] == 96 and cfg.plan["stride"] == 2
    assert any("input size set by the user" in s for s in cfg.plan["sentences"])


def test_a_chosen_input_size_gets_a_crop_planned_for_it():
    big = make_plan(FP, input_size=384)
    assert big.input_size == 384 and big.scale == 384 / 200
    assert big.crop_size == planned_config(TrainConfig(input_size=384), FP).crop_size
    assert big.crop_size >= 1.3 * 60 * big.scale  # the objects at that scale, with a margin


def test_the_seed_model_keeps_its_settings():
    cfg = planned_config(TrainConfig(arch="seed"), FP).resolved()
    assert cfg.input_size == 64 and cfg.crop_size is None and cfg.params == {}
    assert cfg.plan is not None


@pytest.mark.parametrize("text,message", [
    ("stride", "KEY=VALUE"), ("colour=red", "unknown setting"),
    ("augmentation.hue=3", "unknown augmentation"), ("input_size=big", "not a int"),
    ("augmentation.flip=maybe", "not a bool"),
])  # fmt: skip
def test_bad_settings_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_setting(TrainConfig(), text)
