"""The rules between epochs, alone: learning-rate schedule, time budget, early stopping."""

from __future__ import annotations

import math

import pytest

from kpstudio.ml.policies import (
    STEP_COST_PER_PIXEL,
    VALIDATION_SHARE,
    EarlyStopping,
    EpochOutcome,
    LearningRateSchedule,
    TimeBudget,
    first_stop_reason,
    steps_to_amortise_validation,
)


def outcome(epoch=10, val_px=3.0, progress=0.6, elapsed_s=100.0, typical_epoch_s=5.0):
    return EpochOutcome(epoch, val_px, progress, elapsed_s, typical_epoch_s)


def test_schedule_warms_up_linearly_then_anneals_on_a_cosine():
    lr = LearningRateSchedule(1e-3, warmup_epochs=3, final_fraction=0.02)
    assert [lr(e, 0.0) for e in (1, 2, 3)] == pytest.approx([1e-3 / 3, 2e-3 / 3, 1e-3])
    assert lr(4, 0.0) == pytest.approx(1e-3)
    assert lr(50, 0.5) == pytest.approx(1e-3 * (0.02 + 0.98 * 0.5))
    assert lr(99, 1.0) == lr(99, 7.0) == pytest.approx(2e-5)  # progress is clamped


def test_budget_follows_the_clock_after_loading_and_stops_before_an_epoch_that_overruns():
    budget = TimeBudget(2.0)  # 120 s, of which 20 went to loading and building
    budget.start(started=1000.0, loop_started=1020.0)
    assert budget.progress(1070.0) == pytest.approx(0.5)  # 50 of the 100 s left for epochs
    assert budget.remaining(elapsed_s=110.0, estimate_s=60.0) == pytest.approx(10.0)
    assert budget.remaining(elapsed_s=10.0, estimate_s=60.0) == pytest.approx(60.0)
    assert budget.stop_reason(outcome(elapsed_s=110.0, typical_epoch_s=5.0)) is None
    assert budget.stop_reason(outcome(elapsed_s=116.0, typical_epoch_s=5.0)) == (
        "stopped at the 2-minute budget"
    )
    unbounded = TimeBudget(None)
    unbounded.start(0.0, 5.0)
    assert unbounded.progress(1e9) == 0.0 and unbounded.remaining(1e9, 7.0) == 7.0
    assert unbounded.stop_reason(outcome(elapsed_s=1e9)) is None


def test_early_stopping_keeps_the_best_and_waits_for_the_second_half():
    early = EarlyStopping(patience=2)
    assert early.update(1, 5.0) and (early.best, early.best_epoch) == (5.0, 1)
    assert not early.update(2, math.nan)  # a val error that could not be measured
    assert not early.update(3, 5.0)  # equal is not better
    assert early.stale == 2
    assert early.stop_reason(outcome(progress=0.49)) is None  # the rate is still high
    assert early.stop_reason(outcome(progress=0.5)) == (
        "stopped early: no better val error for 2 epochs"
    )
    assert early.update(4, 4.0) and early.stale == 0
    assert early.stop_reason(outcome(progress=0.9)) is None


def test_a_resumed_run_keeps_its_best_and_the_first_rule_that_stops_is_reported():
    early = EarlyStopping(patience=1, best=2.0, best_epoch=7)
    assert not early.update(8, 2.5) and early.best_epoch == 7
    budget = TimeBudget(1.0)
    budget.start(0.0, 0.0)
    late = outcome(progress=0.8, elapsed_s=59.0, typical_epoch_s=2.0)
    assert first_stop_reason([early, budget], late).startswith("stopped early")
    assert first_stop_reason([budget, early], late) == "stopped at the 1-minute budget"
    assert first_stop_reason([], late) is None


@pytest.mark.parametrize("val_images, batch, train_side", [(20, 32, 128), (19, 8, 320), (4, 8, 64)])
def test_epochs_train_long_enough_that_validation_costs_at_most_its_share(
    val_images, batch, train_side
):
    steps = steps_to_amortise_validation(val_images, 320, batch, train_side)
    validation = val_images * 320**2
    step = STEP_COST_PER_PIXEL * batch * train_side**2
    assert validation / (validation + steps * step) <= VALIDATION_SHARE + 1e-9
    if steps > 1:  # and no longer: one step fewer would go over it
        assert validation / (validation + (steps - 1) * step) > VALIDATION_SHARE
    # Openfield with 4 labels: 3 steps an epoch, not 1 (one pass over 4 images).
    assert steps_to_amortise_validation(20, 320, 32, 128) == 3
