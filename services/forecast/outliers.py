"""Robust removal of one-off spikes and dips (incidents) before fitting.

Prophet fits least squares: a handful of incident days at 99% utilisation drag the weekly
profile and the noise level with them, and the seasonal-naive baseline would repeat an
incident week for the whole horizon. Each value is compared with the median of the same
phase in the surrounding seasons (same weekday for daily series); values more than
`K_SIGMA` robust standard deviations away become gaps. Public holidays of the configured
country are kept, so the model can still learn them. Backtests score against the raw values.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

K_SIGMA = 6.0
NEIGHBOUR_SEASONS = 3  # same-phase values this many seasons either side
MIN_SPREAD_FRACTION = 0.01  # of the median level: a near-constant series has no outliers


def holiday_dates(country: str, ds: pd.Series) -> set:
    """Calendar dates of the country's public holidays over the span of ds."""
    if not country or ds.empty:
        return set()
    import holidays

    years = range(pd.Timestamp(ds.min()).year, pd.Timestamp(ds.max()).year + 2)
    try:
        return set(holidays.country_holidays(country, years=years))
    except NotImplementedError:
        return set()


def outlier_mask(y: np.ndarray, ds: pd.Series, m: int, *, country: str = "") -> np.ndarray:
    """True where a value is a one-off spike/dip (regular-grid values with NaN gaps)."""
    y = np.asarray(y, dtype=np.float64)
    if y.size < 3 * max(m, 1) or m < 1:
        return np.zeros(y.size, bool)
    # Remove the local level first, so a steady trend at the end of the history is not
    # mistaken for outliers. A trailing window of exactly one season sees every phase once
    # wherever it sits, so the level carries no seasonal bias at the ends.
    window = max(m, 3)
    level = pd.Series(y).rolling(window, min_periods=window).median()
    level = level.ffill().bfill().to_numpy()
    y = y - level
    # Neighbours only (not the value itself), so a spike cannot pull its own baseline.
    neighbours = np.full((2 * NEIGHBOUR_SEASONS, y.size), np.nan)
    for i, k in enumerate([*range(1, NEIGHBOUR_SEASONS + 1)]):
        lag = k * m
        if lag < y.size:
            neighbours[2 * i, lag:] = y[:-lag]
            neighbours[2 * i + 1, :-lag] = y[lag:]
    counts = np.isfinite(neighbours).sum(axis=0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        baseline = np.nanmedian(neighbours, axis=0)
    baseline[counts < 2] = np.nan
    resid = y - baseline
    ok = np.isfinite(resid)
    if ok.sum() < 10:
        return np.zeros(y.size, bool)
    spread = 1.4826 * np.median(np.abs(resid[ok] - np.median(resid[ok])))
    scale = np.nanmedian(np.abs(level))
    spread = max(spread, MIN_SPREAD_FRACTION * scale, 1e-9)
    mask = ok & (np.abs(resid) > K_SIGMA * spread)
    if country and mask.any():
        keep = holiday_dates(country, pd.Series(ds))
        if keep:
            days = pd.DatetimeIndex(ds).date
            mask &= ~np.isin(days, list(keep))
    return mask


def despike(grid: pd.DataFrame, m: int, *, country: str = "") -> tuple[pd.DataFrame, int]:
    """History with outliers turned into gaps, and how many there were."""
    mask = outlier_mask(grid["y"].to_numpy(float), grid["ds"], m, country=country)
    if not mask.any():
        return grid, 0
    out = grid.copy()
    out.loc[mask, "y"] = np.nan
    return out, int(mask.sum())
