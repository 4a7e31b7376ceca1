"""Incident spikes are ignored when fitting, holidays are kept."""

from __future__ import annotations

import numpy as np
import pandas as pd

from services.forecast.baseline import seasonal_naive_forecast
from services.forecast.model import ForecastConfig
from services.forecast.outliers import despike, outlier_mask


def spiky(days: int = 70, *, spikes: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    ds = pd.date_range("2026-03-02", periods=days, freq="D")
    y = 30 - 15 * (ds.day_of_week >= 5) + rng.normal(0, 1, days)
    if spikes:
        y[[10, 33, days - 3]] = 99.0
    return pd.DataFrame({"ds": ds, "y": y})


def test_spikes_become_gaps() -> None:
    grid = spiky()
    cleaned, n = despike(grid, 7)
    assert n == 3
    assert cleaned["y"].isna().sum() == 3
    assert grid["y"].isna().sum() == 0  # input untouched


def test_weekly_pattern_is_not_an_outlier() -> None:
    grid = spiky(spikes=False)
    assert not outlier_mask(grid["y"].to_numpy(), grid["ds"], 7).any()


def test_public_holidays_are_kept() -> None:
    grid = spiky()
    easter_monday = grid.index[grid["ds"] == pd.Timestamp("2026-04-06")][0]
    grid.loc[easter_monday, "y"] = 0.0
    assert outlier_mask(grid["y"].to_numpy(), grid["ds"], 7)[easter_monday]
    assert not outlier_mask(grid["y"].to_numpy(), grid["ds"], 7, country="DE")[easter_monday]


def test_naive_forecast_does_not_repeat_an_incident_week() -> None:
    result = seasonal_naive_forecast(spiky(), ForecastConfig(horizon=14, n_samples=50))
    assert result.frame["yhat"].max() < 40
