"""Forecast one series: backtest-chosen model, calibrated intervals and sample paths.

`forecast_series` is the single entry point the service and the CLI use. With a stored
`backtest` it costs one Prophet fit plus one sampling pass over the future periods; without
one it first runs the rolling-origin backtest (services/forecast/backtest.py).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from services.forecast import calibration as cal
from services.forecast.backtest import run_backtest
from services.forecast.baseline import effective_season, seasonal_naive_forecast
from services.forecast.outliers import despike
from services.forecast.prophet_fit import fit_prophet
from services.forecast.result import (
    MODEL_VERSION,
    STATUSES,
    ForecastConfig,
    ForecastResult,
    clean_history,
    future_index,
    insufficient,
    regular_grid,
)

__all__ = [
    "MODEL_VERSION",
    "STATUSES",
    "ForecastConfig",
    "ForecastResult",
    "forecast_series",
    "seasonal_naive_forecast",
]

log = logging.getLogger(__name__)


def _fallback(
    clean: pd.DataFrame, config: ForecastConfig, backtest: dict[str, Any] | None, reason: str
) -> ForecastResult:
    detail = f"Prophet could not fit this series ({reason}); seasonal naive produced this forecast."
    record = backtest if backtest and backtest.get("seasonal_naive") else None
    return seasonal_naive_forecast(clean, config, detail=detail, status="fallback", backtest=record)


def forecast_series(
    history: pd.DataFrame,
    config: ForecastConfig,
    *,
    warm_params: dict[str, Any] | None = None,
    backtest: dict[str, Any] | None = None,
    fit_kwargs: dict[str, Any] | None = None,
) -> ForecastResult:
    """Forecast `config.horizon` periods after history (ds, y; NaN = gap); never raises on data.

    backtest=None runs the rolling-origin backtest now; a stored dict is reused (model choice,
    seasonality mode, conformal scales) without refitting cutoffs. fit_kwargs go to Stan's
    optimiser (e.g. {"timeout": 50}).
    """
    start = time.perf_counter()
    clean = clean_history(history)
    observed = int(clean["y"].notna().sum())
    if observed < config.required_history():
        result = insufficient(clean, config, observed)
        result.fit_seconds = time.perf_counter() - start
        return result
    if backtest is None:
        backtest = run_backtest(clean, config, fit_kwargs=fit_kwargs)
    if backtest.get("choice") == "seasonal_naive":
        # Prophet failing every backtest fit is a fallback, not a fair loss to the baseline.
        status = "fallback" if backtest.get("prophet_failed") else "ok"
        result = seasonal_naive_forecast(
            clean, config, detail=backtest.get("note", ""), status=status, backtest=backtest
        )
        result.fit_seconds = time.perf_counter() - start
        return result
    mode = backtest.get("prophet_mode") or "additive"
    grid = regular_grid(clean, config.freq)
    train, n_outliers = despike(
        grid, effective_season(len(grid), config.freq), country=config.country
    )
    try:
        fit = fit_prophet(
            train,
            future_index(clean, config),
            freq=config.freq,
            mode=mode,
            country=config.country,
            n_samples=max(1, config.n_samples),
            seed=config.seed,
            warm_params=warm_params,
            fit_kwargs=fit_kwargs,
        )
    except Exception as exc:  # noqa: BLE001 - Stan/Prophet errors become a labelled fallback
        log.warning("prophet fit failed: %s", exc)
        result = _fallback(clean, config, backtest, f"{type(exc).__name__}: {exc}"[:200])
        result.fit_seconds = time.perf_counter() - start
        return result
    if not (np.isfinite(fit.yhat).all() and np.isfinite(fit.samples).all()):
        result = _fallback(clean, config, backtest, "the fit produced non-finite values")
        result.fit_seconds = time.perf_counter() - start
        return result
    s80 = float(backtest.get("scale_80") or 1.0)
    s95 = float(backtest.get("scale_95") or 1.0)
    samples = cal.calibrate_samples(fit.samples, fit.yhat, s80, s95)
    frame = pd.DataFrame({"ds": fit.ds, "yhat": fit.yhat, **cal.bands(samples)})
    frame["trend"] = fit.trend
    params = dict(fit.params, warm_started=fit.warm, outliers=n_outliers)
    ignored = f" ({n_outliers} one-off outliers ignored)" if n_outliers else ""
    detail = f"Prophet ({mode} seasonality) on {observed} observed periods{ignored}. "
    detail += backtest.get("note", "")
    return ForecastResult(
        status="ok",
        status_detail=detail.strip(),
        model="prophet",
        model_version=MODEL_VERSION,
        frame=frame,
        samples=samples.astype(np.float32),
        components=fit.components,
        changepoints=fit.changepoints,
        params=params,
        backtest=backtest,
        fit_seconds=time.perf_counter() - start,
    )
