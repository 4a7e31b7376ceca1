"""Rolling-origin backtest: cutoffs, model choice, notes and conformal scales."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from services.forecast import backtest as bt
from services.forecast.model import ForecastConfig
from services.forecast.result import backtest_horizon, cutoff_positions


def series(days: int = 90, noise: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    ds = pd.date_range("2026-01-01", periods=days, freq="D")
    y = 60 + 0.2 * np.arange(days) - 10 * (ds.day_of_week >= 5) + rng.normal(0, noise, days)
    return pd.DataFrame({"ds": ds, "y": y})


def test_cutoffs_are_half_a_horizon_apart_and_respect_min_training() -> None:
    assert cutoff_positions(180, 36, 3, 28) == [108, 126, 144]
    assert cutoff_positions(60, 12, 3, 40) == [42, 48]
    assert cutoff_positions(30, 12, 3, 28) == []
    assert backtest_horizon(180, ForecastConfig(horizon=90)) == 36
    assert backtest_horizon(2000, ForecastConfig(horizon=90)) == 90


def fake_metrics(mape: float) -> dict:
    return {
        "mape": mape,
        "coverage_80": 0.6,
        "coverage_95": 0.8,
        "n": 54,
        "scale_80": 1.5,
        "scale_95": 1.4,
    }


def test_prophet_wins_with_the_better_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    mapes = {"additive": 0.05, "multiplicative": 0.03}
    monkeypatch.setattr(bt, "prophet_metrics", lambda *a, mode, **k: fake_metrics(mapes[mode]))
    record = bt.run_backtest(series(), ForecastConfig(horizon=30))
    json.dumps(record)
    assert record["choice"] == "prophet"
    assert record["prophet_mode"] == "multiplicative"
    assert record["scale_80"] == 1.5
    assert record["cutoffs"] == 3
    assert "Prophet (multiplicative seasonality) beat seasonal naive" in record["note"]
    assert "covered 60.0%" in record["note"]


def test_seasonal_naive_wins_and_the_note_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bt, "prophet_metrics", lambda *a, mode, **k: fake_metrics(5.0))
    record = bt.run_backtest(series(), ForecastConfig(horizon=30))
    assert record["choice"] == "seasonal_naive"
    assert record["note"].startswith("Seasonal naive beat Prophet in backtest (MAPE ")
    assert "it produced this forecast" in record["note"]
    assert record["scale_80"] == record["seasonal_naive"]["scale_80"]


def test_prophet_failing_in_backtest_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> dict:
        raise RuntimeError("stan")

    monkeypatch.setattr(bt, "prophet_metrics", broken)
    record = bt.run_backtest(series(), ForecastConfig(horizon=30))
    assert record["choice"] == "seasonal_naive"
    assert record["prophet_failed"] is True
    assert "failed" in record["note"]


def test_negative_values_skip_multiplicative(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    monkeypatch.setattr(
        bt, "prophet_metrics", lambda *a, mode, **k: seen.append(mode) or fake_metrics(0.1)
    )
    frame = series()
    frame["y"] -= 100
    bt.run_backtest(frame, ForecastConfig(horizon=30))
    assert seen == ["additive"]


def test_too_short_for_a_backtest_is_uncalibrated() -> None:
    record = bt.run_backtest(series(32), ForecastConfig(horizon=30))
    assert record["cutoffs"] == 0
    assert record["scale_80"] == 1.0
    assert "Too little history" in record["note"]


def test_real_backtest_measures_prophet_and_naive() -> None:
    config = ForecastConfig(horizon=14, backtest_cutoffs=2)
    record = bt.run_backtest(series(70), config, modes=("additive",))
    assert record["cutoffs"] == 2
    assert record["horizon"] == 14
    for model in ("prophet", "seasonal_naive"):
        assert 0 < record[model]["mape"] < 0.2
        assert 0 <= record[model]["coverage_80"] <= 1
        assert record[model]["n"] == 28
