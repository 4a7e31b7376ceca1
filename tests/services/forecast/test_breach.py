"""Breach risk: sustained-breach definition, probabilities by horizon, dates, hourly paths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.forecast.breach import breach_risk, daily_paths

DS = pd.date_range("2026-01-01", periods=90, freq="D")


def ramp_paths(cross_days: list[int], n_days: int = 90) -> np.ndarray:
    """One path per crossing day: 50 before it, 90 from it on (NaN-free)."""
    paths = np.full((n_days, len(cross_days)), 50.0)
    for j, day in enumerate(cross_days):
        paths[day:, j] = 90.0
    return paths


def test_sustained_breach_is_dated_when_the_window_median_crosses() -> None:
    # Crossing on forecast day index 10 (offset 11 from the last history day): the 7-day
    # median is past the threshold once 4 of the 7 days are, i.e. 3 days later.
    risk = breach_risk(ramp_paths([10]), DS, threshold=80)
    assert risk.first_breach_day.tolist() == [14.0]
    assert risk.date == pd.Timestamp("2026-01-14")
    assert risk.p_by_horizon == {30: 1.0, 60: 1.0, 90: 1.0}


def test_one_noisy_day_is_not_a_breach() -> None:
    paths = np.full((90, 1), 50.0)
    paths[20, 0] = paths[40, 0] = 99.0
    risk = breach_risk(paths, DS, threshold=80)
    assert np.isnan(risk.first_breach_day).all()
    assert risk.p_by_horizon[90] == 0.0
    assert risk.date is None


def test_probabilities_and_date_range_follow_the_paths() -> None:
    cross = [5, 15, 25, 35, 45, 55, 65, 75, 200, 200]  # two paths never cross
    paths = ramp_paths([min(c, 89) if c < 90 else 90 for c in cross])
    risk = breach_risk(paths, DS, threshold=80)
    assert risk.p_by_horizon[30] == pytest.approx(0.3)
    assert risk.p_by_horizon[60] == pytest.approx(0.6)
    assert risk.p_by_horizon[90] == pytest.approx(0.8)
    assert risk.date_low == pd.Timestamp("2026-01-09")
    assert risk.date == pd.Timestamp("2026-02-18")
    assert risk.date_high is None  # beyond the horizon for the slowest 10%


def test_fewer_than_half_breaching_has_no_likely_date() -> None:
    paths = ramp_paths([10, 90, 90, 90])
    risk = breach_risk(paths, DS, threshold=80)
    assert risk.date is None
    assert risk.date_low is not None


def test_lower_is_worse_breaches_from_above() -> None:
    paths = 100.0 - ramp_paths([20])
    risk = breach_risk(paths, DS, threshold=20, higher_is_worse=False)
    assert risk.first_breach_day[0] == 24.0


def test_start_moves_the_offsets() -> None:
    risk = breach_risk(ramp_paths([10]), DS, threshold=80, start=pd.Timestamp("2025-12-01"))
    assert risk.first_breach_day[0] == 14.0 + 30
    assert risk.date == pd.Timestamp("2026-01-14")


def test_hourly_paths_use_the_daily_maximum() -> None:
    ds = pd.date_range("2026-01-01", periods=24 * 30, freq="h")
    paths = np.full((len(ds), 2), 40.0)
    paths[ds.hour == 18, 1] = 95.0  # a daily busy hour above the threshold
    days, daily = daily_paths(paths, ds)
    assert len(days) == 30
    assert daily[:, 1].max() == 95.0
    risk = breach_risk(paths, ds, threshold=80)
    assert np.isnan(risk.first_breach_day[0])
    assert risk.first_breach_day[1] == 7.0


def test_shape_mismatch_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="samples must be"):
        breach_risk(np.zeros((10, 3)), DS, threshold=1)


def test_horizons_past_the_forecast_are_unknown_not_zero() -> None:
    ds = pd.date_range("2026-01-01", periods=20, freq="D")
    samples = np.full((20, 50), 90.0)
    risk = breach_risk(samples, ds, threshold=80.0, horizons=(10, 30))
    assert risk.p_by_horizon[10] == 1.0
    assert np.isnan(risk.p_by_horizon[30])
