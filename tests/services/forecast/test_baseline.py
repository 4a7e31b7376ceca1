"""Seasonal naive: last season repeated, coherent paths, labelled results."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from services.forecast import baseline
from services.forecast.model import ForecastConfig, seasonal_naive_forecast


def history(days: int = 63) -> pd.DataFrame:
    ds = pd.date_range("2026-01-05", periods=days, freq="D")
    y = 40 + 5 * (ds.day_of_week.to_numpy() == 2) + np.random.default_rng(0).normal(0, 1, days)
    return pd.DataFrame({"ds": ds, "y": y})


def test_point_forecast_repeats_the_last_week() -> None:
    y = np.arange(21.0)
    np.testing.assert_array_equal(
        baseline.point_forecast(y, 7, 10), [14, 15, 16, 17, 18, 19, 20, 14, 15, 16]
    )


def test_gaps_are_filled_from_the_previous_season() -> None:
    y = np.array([1.0, 2, 3, 4, np.nan, 6, np.nan])
    np.testing.assert_array_equal(baseline.fill_gaps(y, 2), [1, 2, 3, 4, 3, 6, 3])


def test_paths_are_a_centred_seasonal_random_walk() -> None:
    rng = np.random.default_rng(1)
    y = np.tile([1.0, 5.0, 3.0], 30) + rng.normal(0, 0.1, 90)
    paths = baseline.simulate(y, 3, 30, 2000, rng)
    assert paths.shape == (30, 2000)
    np.testing.assert_allclose(paths.mean(axis=1), np.resize(y[-3:], 30), atol=0.05)
    # Spread grows with the number of seasons ahead.
    assert paths[-1].std() > 2 * paths[0].std()


def test_result_is_labelled_and_calibrated_by_its_own_backtest() -> None:
    config = ForecastConfig(horizon=21, n_samples=200)
    result = seasonal_naive_forecast(
        history(), config, status="fallback", detail="Prophet timed out"
    )
    assert result.status == "fallback"
    assert result.model == "seasonal_naive"
    assert result.status_detail == "Prophet timed out"
    assert len(result.frame) == 21
    assert result.samples.shape == (21, 200)
    assert result.frame["ds"].iloc[0] == pd.Timestamp("2026-03-09")
    assert result.frame["yhat"].iloc[2] > result.frame["yhat"].iloc[1] + 3  # Wednesdays
    bt = result.backtest
    json.dumps(bt)
    assert bt["choice"] == "seasonal_naive"
    assert bt["seasonal_naive"]["n"] > 0
    assert bt["prophet"] is None


def test_short_history_is_insufficient() -> None:
    result = seasonal_naive_forecast(history(10), ForecastConfig(horizon=7))
    assert result.status == "insufficient_history"
    assert result.samples is None


@pytest.mark.parametrize(("freq", "periods", "season"), [("h", 24 * 10, 24), ("MS", 40, 12)])
def test_other_frequencies_use_their_season(freq: str, periods: int, season: int) -> None:
    ds = pd.date_range("2020-01-01", periods=periods, freq=freq)
    frame = pd.DataFrame({"ds": ds, "y": np.arange(periods) % season + 10.0})
    config = ForecastConfig(horizon=season, freq=freq, n_samples=20, min_history=2 * season)
    result = seasonal_naive_forecast(frame, config)
    np.testing.assert_allclose(
        result.frame["yhat"], np.arange(periods, periods + season) % season + 10
    )
