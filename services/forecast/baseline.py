"""Seasonal-naive baseline: last season repeated, paths from a bootstrapped seasonal random walk.

A week for daily series (a day for hourly); it is the bar Prophet must clear in backtest and
the labelled fallback when Prophet fails or times out.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from services.forecast import calibration as cal
from services.forecast.outliers import despike, outlier_mask
from services.forecast.result import (
    MODEL_VERSION,
    ForecastConfig,
    ForecastResult,
    backtest_horizon,
    clean_history,
    cutoff_positions,
    future_index,
    insufficient,
    regular_grid,
    season_length,
)

BACKTEST_PATHS = 200


def effective_season(n_periods: int, freq: str) -> int:
    """The seasonal period, or 1 (plain naive) when the history is shorter than two seasons."""
    m = season_length(freq)
    return m if n_periods >= 2 * m else 1


def fill_gaps(y: np.ndarray, m: int) -> np.ndarray:
    """Gaps filled from the same phase one season earlier, then carried forward/back."""
    out = np.asarray(y, dtype=np.float64).copy()
    for t in range(m, out.size):
        if np.isnan(out[t]):
            out[t] = out[t - m]
    filled = pd.Series(out).ffill().bfill().to_numpy()
    return filled


def point_forecast(y: np.ndarray, m: int, horizon: int) -> np.ndarray:
    """The last season repeated over the horizon."""
    last = y[-m:]
    return np.resize(last, horizon).astype(np.float64)


def residual_pool(y: np.ndarray, m: int) -> np.ndarray:
    """Centred one-season differences: the step distribution of the seasonal random walk."""
    diffs = y[m:] - y[:-m]
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size == 0:
        return np.zeros(1)
    return diffs - diffs.mean()


def simulate(y: np.ndarray, m: int, horizon: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """(horizon, n) paths: each season is the previous one plus bootstrapped differences."""
    pool = residual_pool(y, m)
    paths = np.empty((m + horizon, n))
    paths[:m] = y[-m:, None]
    draws = rng.choice(pool, size=(horizon, n))
    for start in range(0, horizon, m):
        stop = min(start + m, horizon)
        paths[m + start : m + stop] = paths[start:stop] + draws[start:stop]
    return paths[m:]


def naive_backtest(
    grid: pd.DataFrame,
    m: int,
    positions: list[int],
    horizon: int,
    rng: np.random.Generator,
    *,
    country: str = "",
) -> dict[str, Any]:
    """Rolling-origin errors and raw interval coverage of the baseline at the given cutoffs."""
    y, ds = grid["y"].to_numpy(float), grid["ds"]
    actual, pred, s80, s95, in80, in95 = [], [], [], [], [], []
    for cut in positions:
        past = y[:cut].copy()
        past[outlier_mask(past, ds.iloc[:cut], m, country=country)] = np.nan
        train, test = fill_gaps(past, m), y[cut : cut + horizon]
        yhat = point_forecast(train, m, len(test))
        paths = simulate(train, m, len(test), BACKTEST_PATHS, rng)
        lo80, hi80 = cal.quantile_bands(paths, 0.8)
        lo95, hi95 = cal.quantile_bands(paths, 0.95)
        actual.append(test)
        pred.append(yhat)
        s80.append(cal.normalised_scores(test, yhat, lo80, hi80))
        s95.append(cal.normalised_scores(test, yhat, lo95, hi95))
        in80.append((test >= lo80) & (test <= hi80))
        in95.append((test >= lo95) & (test <= hi95))
    return summarise(actual, pred, s80, s95, in80, in95)


def summarise(
    actual: list, pred: list, s80: list, s95: list, in80: list, in95: list
) -> dict[str, Any]:
    """Pooled backtest metrics and conformal scales from per-cutoff arrays."""
    if not actual:
        return {"mape": None, "coverage_80": None, "coverage_95": None, "n": 0}
    a = np.concatenate(actual)
    ok = np.isfinite(a)
    scores_80, scores_95 = np.concatenate(s80), np.concatenate(s95)
    return {
        "mape": _num(cal.mape(a, np.concatenate(pred))),
        "coverage_80": _num(float(np.mean(np.concatenate(in80)[ok]))) if ok.any() else None,
        "coverage_95": _num(float(np.mean(np.concatenate(in95)[ok]))) if ok.any() else None,
        "n": int(ok.sum()),
        "scale_80": cal.conformal_scale(scores_80, 0.8),
        "scale_95": cal.conformal_scale(scores_95, 0.95),
    }


def _num(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def naive_positions(n_periods: int, config: ForecastConfig) -> list[int]:
    """Backtest cutoffs for a regular history of `n_periods` (shared with Prophet's)."""
    m = effective_season(n_periods, config.freq)
    min_train = max(config.required_history(), 2 * m)
    horizon = backtest_horizon(n_periods, config)
    return cutoff_positions(n_periods, horizon, config.backtest_cutoffs, min_train)


def naive_metrics(grid: pd.DataFrame, config: ForecastConfig) -> dict[str, Any]:
    """The baseline's backtest on a regular-grid history (same cutoffs as Prophet's)."""
    y = grid["y"].to_numpy(float)
    m = effective_season(y.size, config.freq)
    horizon = backtest_horizon(y.size, config)
    positions = naive_positions(y.size, config)
    rng = np.random.default_rng(config.seed)
    return naive_backtest(grid, m, positions, horizon, rng, country=config.country)


def naive_only_backtest(grid: pd.DataFrame, config: ForecastConfig) -> dict[str, Any]:
    """A backtest record for the baseline alone (used when Prophet is not part of the run)."""
    metrics = naive_metrics(grid, config)
    y = grid["y"].to_numpy(float)
    return {
        "at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "cutoffs": len(naive_positions(y.size, config)),
        "horizon": backtest_horizon(y.size, config),
        "choice": "seasonal_naive",
        "prophet_mode": None,
        "prophet": None,
        "seasonal_naive": metrics,
        "modes": {},
        "scale_80": metrics.get("scale_80", 1.0),
        "scale_95": metrics.get("scale_95", 1.0),
        "note": "Seasonal naive only; Prophet was not evaluated.",
    }


def seasonal_naive_forecast(
    history: pd.DataFrame,
    config: ForecastConfig,
    *,
    detail: str = "",
    status: str = "ok",
    backtest: dict[str, Any] | None = None,
) -> ForecastResult:
    """The labelled baseline forecast; intervals conformally scaled by its own backtest."""
    start = time.perf_counter()
    clean = clean_history(history)
    observed = int(clean["y"].notna().sum())
    if observed < max(2, min(config.required_history(), 2 * season_length(config.freq))):
        return insufficient(clean, config, observed)
    grid = regular_grid(clean, config.freq)
    m = effective_season(len(grid), config.freq)
    despiked, _ = despike(grid, m, country=config.country)
    y = fill_gaps(despiked["y"].to_numpy(float), m)
    future = future_index(grid, config)
    yhat = point_forecast(y, m, config.horizon)
    rng = np.random.default_rng(config.seed)
    raw = simulate(y, m, config.horizon, max(1, config.n_samples), rng)
    if backtest is None:
        backtest = naive_only_backtest(grid, config)
    own = backtest.get("seasonal_naive") or {}
    s80, s95 = float(own.get("scale_80", 1.0)), float(own.get("scale_95", 1.0))
    samples = cal.calibrate_samples(raw, yhat, s80, s95)
    frame = pd.DataFrame({"ds": future, "yhat": yhat, **cal.bands(samples)})
    frame["trend"] = np.nan
    if not detail:
        detail = f"Seasonal naive: the last {m}-period season repeated."
    return ForecastResult(
        status=status,
        status_detail=detail,
        model="seasonal_naive",
        model_version=MODEL_VERSION,
        frame=frame,
        samples=samples.astype(np.float32),
        components={},
        changepoints=[],
        params={},
        backtest=backtest,
        fit_seconds=time.perf_counter() - start,
    )
