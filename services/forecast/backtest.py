"""Rolling-origin backtest: Prophet (additive / multiplicative) against seasonal naive.

Cutoffs are half a backtest horizon apart at the end of the history (default 3). Each model is
refitted on the data before a cutoff and scored on the periods after it: MAPE, the raw
coverage of its 80%/95% intervals, and the conformal scale factors that calibrate them. The
winner by MAPE produces the forecast; the note says which and why, in plain language.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from services.forecast import calibration as cal
from services.forecast.baseline import effective_season, naive_metrics, naive_positions, summarise
from services.forecast.outliers import despike
from services.forecast.prophet_fit import fit_prophet
from services.forecast.result import (
    ForecastConfig,
    backtest_horizon,
    clean_history,
    regular_grid,
)

log = logging.getLogger(__name__)

BACKTEST_SAMPLES = 200  # enough for 80/95% quantiles; the backtest is about errors, not tails


def prophet_metrics(
    grid: pd.DataFrame,
    positions: list[int],
    horizon: int,
    config: ForecastConfig,
    *,
    mode: str,
    fit_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Prophet's backtest in one seasonality mode; cutoffs warm-start from the previous one."""
    actual, pred, s80, s95, in80, in95 = [], [], [], [], [], []
    warm = None
    m = effective_season(len(grid), config.freq)
    for cut in positions:
        train, _ = despike(grid.iloc[:cut], m, country=config.country)
        test = grid.iloc[cut : cut + horizon]
        fit = fit_prophet(
            train,
            pd.DatetimeIndex(test["ds"]),
            freq=config.freq,
            mode=mode,
            country=config.country,
            n_samples=BACKTEST_SAMPLES,
            seed=config.seed,
            warm_params=warm,
            components=False,
            fit_kwargs=fit_kwargs,
        )
        warm = fit.params
        y = test["y"].to_numpy(float)
        lo80, hi80 = cal.quantile_bands(fit.samples, 0.8)
        lo95, hi95 = cal.quantile_bands(fit.samples, 0.95)
        actual.append(y)
        pred.append(fit.yhat)
        s80.append(cal.normalised_scores(y, fit.yhat, lo80, hi80))
        s95.append(cal.normalised_scores(y, fit.yhat, lo95, hi95))
        in80.append((y >= lo80) & (y <= hi80))
        in95.append((y >= lo95) & (y <= hi95))
    return summarise(actual, pred, s80, s95, in80, in95)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _better(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """True when backtest `a` has a lower MAPE than `b` (missing counts as worse)."""
    if not a or a.get("mape") is None:
        return False
    if not b or b.get("mape") is None:
        return True
    return a["mape"] < b["mape"]


def run_backtest(
    history: pd.DataFrame,
    config: ForecastConfig,
    *,
    modes: tuple[str, ...] | None = None,
    fit_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON-able backtest record that forecast_series reuses (model choice + scales)."""
    clean = clean_history(history)
    grid = regular_grid(clean, config.freq)
    y = grid["y"].to_numpy(float)
    horizon = backtest_horizon(y.size, config)
    positions = naive_positions(y.size, config)
    record: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cutoffs": len(positions),
        "horizon": horizon,
        "choice": "prophet",
        "prophet_mode": "additive",
        "prophet": None,
        "seasonal_naive": None,
        "modes": {},
        "scale_80": 1.0,
        "scale_95": 1.0,
    }
    if not positions:
        record["note"] = (
            "Too little history for a backtest yet; Prophet's intervals are shown uncalibrated."
        )
        return record
    naive = naive_metrics(grid, config)
    record["seasonal_naive"] = naive
    observed = y[np.isfinite(y)]
    if modes is None:
        # Multiplicative seasonality only makes sense for a strictly positive KPI.
        modes = ("additive", "multiplicative") if observed.min() > 0 else ("additive",)
    failures = []
    for mode in modes:
        try:
            record["modes"][mode] = prophet_metrics(
                grid, positions, horizon, config, mode=mode, fit_kwargs=fit_kwargs
            )
        except Exception as exc:  # noqa: BLE001 - a failing mode is a result, not a crash
            log.warning("prophet backtest (%s) failed: %s", mode, exc)
            failures.append(f"{mode}: {type(exc).__name__}")
    best = None
    for mode, metrics in record["modes"].items():
        if best is None or _better(metrics, record["modes"][best]):
            best = mode
    if best is not None:
        record["prophet_mode"] = best
        record["prophet"] = record["modes"][best]
    prophet = record["prophet"]
    span = f"{len(positions)} cutoffs, {horizon} periods ahead"
    if prophet is None:
        record["choice"] = "seasonal_naive"
        record["prophet_failed"] = True
        record["note"] = (
            f"Prophet failed in backtest ({', '.join(failures)}); seasonal naive produced "
            "this forecast."
        )
    elif _better(naive, prophet):
        record["choice"] = "seasonal_naive"
        record["note"] = (
            f"Seasonal naive beat Prophet in backtest (MAPE {_pct(naive['mape'])} vs "
            f"{_pct(prophet['mape'])}, {span}); it produced this forecast."
        )
    else:
        record["note"] = (
            f"Prophet ({best} seasonality) beat seasonal naive in backtest (MAPE "
            f"{_pct(prophet['mape'])} vs {_pct(naive['mape'])}, {span})."
        )
    chosen = naive if record["choice"] == "seasonal_naive" else prophet
    record["scale_80"], record["scale_95"] = chosen["scale_80"], chosen["scale_95"]
    if chosen.get("n", 0) < cal.MIN_SCORES:
        record["note"] += " Too few backtest points to calibrate its intervals."
    else:
        record["note"] += (
            f" Its 80% interval covered {_pct(chosen['coverage_80'])} of backtest points, "
            f"so intervals are scaled x{chosen['scale_80']:.2f} to cover about 80%."
        )
    return record
