"""What-if scenarios: growth and offload from a date scale forecast and paths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.forecast.breach import breach_risk
from services.forecast.whatif import Scenario, apply_scenario


def forecast(days: int = 90, level: float = 60.0) -> tuple[pd.DataFrame, np.ndarray]:
    ds = pd.date_range("2026-03-01", periods=days, freq="D")
    yhat = level + 0.1 * np.arange(days)
    frame = pd.DataFrame({"ds": ds, "yhat": yhat, "lower_80": yhat - 5, "upper_80": yhat + 5})
    frame["lower_95"], frame["upper_95"], frame["trend"] = yhat - 9, yhat + 9, yhat
    noise = np.random.default_rng(3).normal(0, 3, (days, 200))
    return frame, (yhat[:, None] + noise).astype(np.float32)


def test_growth_from_a_date_scales_only_later_periods() -> None:
    frame, samples = forecast()
    since = pd.Timestamp("2026-04-01")
    out, paths = apply_scenario(frame, samples, Scenario(growth_pct=15, growth_from=since))
    later = (frame["ds"] >= since).to_numpy()
    np.testing.assert_allclose(out["yhat"][later], frame["yhat"][later] * 1.15)
    np.testing.assert_allclose(out["yhat"][~later], frame["yhat"][~later])
    np.testing.assert_allclose(paths[later], samples[later] * 1.15, rtol=1e-6)
    assert paths.dtype == samples.dtype
    assert frame["yhat"].iloc[-1] == pytest.approx(60 + 8.9)  # input untouched


def test_growth_and_offload_combine() -> None:
    frame, _samples = forecast()
    scenario = Scenario(growth_pct=25, offload_pct=20, offload_from=pd.Timestamp("2026-05-01"))
    factors = scenario.factors(pd.DatetimeIndex(frame["ds"]))
    assert factors[0] == pytest.approx(1.25)
    assert factors[-1] == pytest.approx(1.0)
    out, _ = apply_scenario(frame, None, scenario)
    assert out["upper_95"].iloc[-1] == pytest.approx(frame["upper_95"].iloc[-1])


def test_timezone_aware_dates_compare_with_naive_forecasts() -> None:
    frame, samples = forecast()
    since = pd.Timestamp("2026-04-01", tz="UTC")
    out, _ = apply_scenario(frame, samples, Scenario(growth_pct=10, growth_from=since))
    assert out["yhat"].iloc[0] == frame["yhat"].iloc[0]


def test_growth_brings_the_breach_forward() -> None:
    frame, samples = forecast()
    ds = pd.DatetimeIndex(frame["ds"])
    base = breach_risk(samples, ds, threshold=75)
    _, grown = apply_scenario(frame, samples, Scenario(growth_pct=15))
    risk = breach_risk(grown, ds, threshold=75)
    assert risk.p_by_horizon[30] > base.p_by_horizon[30]
    assert risk.date is not None
    assert base.date is None or risk.date < base.date
    _, offloaded = apply_scenario(frame, samples, Scenario(offload_pct=30))
    assert breach_risk(offloaded, ds, threshold=75).p_by_horizon[90] == 0.0


@pytest.mark.parametrize(
    "scenario", [Scenario(growth_pct=-100), Scenario(offload_pct=100), Scenario(offload_pct=-5)]
)
def test_impossible_scenarios_are_refused(scenario: Scenario) -> None:
    frame, samples = forecast()
    with pytest.raises(ValueError, match="must be"):
        apply_scenario(frame, samples, scenario)


def test_mismatched_paths_are_refused() -> None:
    frame, samples = forecast()
    with pytest.raises(ValueError, match="rows"):
        apply_scenario(frame, samples[:10], Scenario(growth_pct=5))
