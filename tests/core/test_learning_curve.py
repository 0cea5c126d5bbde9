"""The learning curve: a power law recovered from synthetic curves, and forecasts from it."""

from __future__ import annotations

import numpy as np
import pytest

from kpstudio.core.learning_curve import (
    best_per_count,
    fit_learning_curve,
    fit_power_law,
    forecast,
    read_subset_points,
    run_points,
    write_subset_points,
)
from kpstudio.core.runs import RunRecord

A, B, C = 40.0, 0.6, 1.8
N = np.array([5, 10, 20, 40, 80, 160, 320, 640])


def _curve(n):
    return A * np.power(n, -B) + C


def test_a_clean_curve_gives_back_its_a_b_c():
    law = fit_power_law(N, _curve(N))
    assert law.a == pytest.approx(A, rel=0.05)
    assert law.b == pytest.approx(B, rel=0.05)
    assert law.c == pytest.approx(C, abs=0.05)


def test_a_noisy_curve_is_still_close():
    rng = np.random.default_rng(3)
    err = _curve(N) * (1 + rng.normal(0, 0.02, len(N)))
    law = fit_power_law(N, err)
    assert np.allclose(law(N), _curve(N), rtol=0.06)
    assert law.c == pytest.approx(C, abs=0.6)


def test_the_forecast_from_half_the_points_holds_at_all_of_them():
    half = N[N <= 40]  # 5, 10, 20, 40
    law = fit_power_law(half, _curve(half))
    assert law(640) == pytest.approx(_curve(640), rel=0.10)
    target = float(_curve(320))
    assert law.labels_for(target) == pytest.approx(320, rel=0.25)


def test_a_first_regime_off_the_law_is_left_out_of_the_forecast():
    # Openfield's shape: until the model finds the animal (8–16 labels) the error is far above
    # the law the later points follow; fitted from the start, the curve plunges towards 0.
    n = np.array([4, 8, 12, 16, 20, 25, 32, 40])
    err = 2.0 + 40.0 * np.power(n / 4.0, -1.0)
    err[:3] = [80.0, 36.0, 25.0]
    whole = fit_power_law(n, err)
    trimmed = fit_learning_curve(n, err)
    truth = 2.0 + 40.0 * (96 / 4.0) ** -1.0
    assert trimmed(96) == pytest.approx(truth, rel=0.1)
    assert abs(whole(96) - truth) > abs(trimmed(96) - truth)
    assert trimmed.points < len(n)
    on_law = fit_learning_curve(N[:-1], _curve(N[:-1]))  # on the law throughout: all points
    assert on_law.points == len(N) - 1
    assert on_law(N[-1]) == pytest.approx(_curve(N[-1]), rel=0.05)


def test_too_few_points_fit_without_a_floor_and_one_point_fits_nothing():
    law = fit_power_law([10, 40], [8.0, 4.0])
    assert law.c == 0 and law.b == pytest.approx(0.5)
    assert law.labels_for(2.0) == pytest.approx(160)
    with pytest.raises(ValueError, match="two or more"):
        fit_power_law([10, 10], [5.0, 4.0])
    assert forecast([(10, 5.0)], 3.0).law is None
    assert "not enough runs" in forecast([], 3.0).sentence()


def test_forecast_says_how_many_more_labels_or_that_labels_will_not_do():
    points = [(int(n), float(e)) for n, e in zip(N[:5], _curve(N[:5]))]
    fc = forecast(points, target_px=3.0)
    expected = (A / (3.0 - C)) ** (1 / B)
    assert fc.labels_needed == pytest.approx(expected, rel=0.1)
    assert fc.more_labels == pytest.approx(expected - 80, rel=0.15)
    assert "more labels to reach 3 px" in fc.sentence()
    below_floor = forecast(points, target_px=1.0)
    assert below_floor.more_labels is None and "levels off" in below_floor.sentence()
    flat = forecast([(10, 5.0), (20, 4.99)], target_px=1.0)  # 10^300 labels: not a number
    assert flat.labels_needed is None and "too slowly" in flat.sentence()
    assert "already meets" in forecast(points, target_px=10.0).sentence()


def test_points_keep_the_best_run_per_count_and_skip_unfinished_runs(tmp_path):
    def run(status, images, mean_px, split="val", best_epoch=5):
        return RunRecord("r", 0.0, "default", status, {"plan": {"fingerprint": {"images": images}}},
                         [], {"mean_px": mean_px, "split": split, "best_epoch": best_epoch},
                         None)  # fmt: skip

    # A run from a model that kept that model (best epoch 0) says nothing about 40 labels.
    runs = [run("finished", 10, 6.0), run("stopped", 10, 5.0), run("failed", 20, 1.0),
            run("finished", 20, 4.0, split="train"), run("finished", 30, 3.5),
            run("finished", 40, 3.5, best_epoch=0)]  # fmt: skip
    assert best_per_count(run_points(runs)) == [(10, 5.0), (30, 3.5)]
    write_subset_points(tmp_path, [{"labels": 12, "mean_px": 4.5}])
    assert read_subset_points(tmp_path) == [(12, 4.5)]
    (tmp_path / "learning_curve.json").write_text("{not json")
    assert read_subset_points(tmp_path) == []
