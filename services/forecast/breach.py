"""Capacity breach risk from calibrated predictive sample paths.

Breach definition: a path breaches on the first day its rolling `sustain_days` median of the
daily busy-hour value is past the threshold (above it for higher-is-worse KPIs, below it
otherwise), so one noisy day does not count; the window must be full, so the earliest
possible breach is the `sustain_days`-th forecast day. Sub-daily paths are first reduced to
one value per day (the daily maximum, or minimum when lower is worse). The probability of a
breach within H days is the share of paths whose first breach is at most H days after `start`
(default: the day before the first forecast day, i.e. the last day of history); it is NaN
for a horizon the forecast does not reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

HORIZONS = (30, 60, 90)


@dataclass(frozen=True)
class BreachRisk:
    """Breach probabilities by horizon and the first-breach date distribution."""

    p_by_horizon: dict[int, float]
    date: pd.Timestamp | None
    date_low: pd.Timestamp | None
    date_high: pd.Timestamp | None
    first_breach_day: np.ndarray


def daily_paths(
    samples: np.ndarray, ds: pd.DatetimeIndex, *, higher_is_worse: bool = True
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """One row per calendar day: the worst value of each path that day."""
    ds = pd.DatetimeIndex(ds)
    days = ds.normalize()
    if days.is_unique:
        return days, np.asarray(samples, dtype=np.float64)
    frame = pd.DataFrame(np.asarray(samples, dtype=np.float64))
    grouped = frame.groupby(days.to_numpy())
    daily = grouped.max() if higher_is_worse else grouped.min()
    return pd.DatetimeIndex(daily.index), daily.to_numpy()


def first_breach_days(
    daily: np.ndarray,
    offsets: np.ndarray,
    *,
    threshold: float,
    higher_is_worse: bool,
    sustain_days: int,
) -> np.ndarray:
    """Per path: the day offset of the first sustained breach, NaN when there is none."""
    n_days, n_paths = daily.shape
    window = max(1, int(sustain_days))
    out = np.full(n_paths, np.nan)
    if n_days < window:
        return out
    views = np.lib.stride_tricks.sliding_window_view(daily, window, axis=0)
    medians = np.median(views, axis=-1)  # (n_days - window + 1, n_paths)
    past = medians > threshold if higher_is_worse else medians < threshold
    hit = past.any(axis=0)
    first = past.argmax(axis=0)
    # A window is dated by its last day: the day the breach has lasted long enough to count.
    out[hit] = offsets[first[hit] + window - 1]
    return out


def _order_stat(values: np.ndarray, q: float) -> float:
    ordered = np.sort(np.where(np.isnan(values), np.inf, values))
    return float(ordered[max(0, int(np.ceil(q * ordered.size)) - 1)])


def breach_risk(
    samples: np.ndarray,
    ds: pd.DatetimeIndex,
    *,
    threshold: float,
    higher_is_worse: bool = True,
    start: pd.Timestamp | None = None,
    horizons: tuple[int, ...] = HORIZONS,
    sustain_days: int = 7,
) -> BreachRisk:
    """Breach probability by horizon and the likely first-breach date with a 10-90% range."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 2 or samples.shape[0] != len(ds):
        raise ValueError(f"samples must be (len(ds), n_paths); got {samples.shape} for {len(ds)}")
    days, daily = daily_paths(samples, ds, higher_is_worse=higher_is_worse)
    origin = (
        pd.Timestamp(start).normalize() if start is not None else days[0] - pd.Timedelta(days=1)
    )
    offsets = np.asarray((days - origin) / pd.Timedelta(days=1), dtype=np.float64)
    first = first_breach_days(
        daily,
        offsets,
        threshold=threshold,
        higher_is_worse=higher_is_worse,
        sustain_days=sustain_days,
    )
    n = max(1, first.size)
    covered = float(offsets[-1]) if offsets.size else 0.0
    # A horizon past the last forecast day is unknown, not "no breach".
    p = {int(h): float(np.sum(first <= h) / n) if h <= covered else np.nan for h in horizons}

    def as_date(q: float) -> pd.Timestamp | None:
        value = _order_stat(first, q) if first.size else np.inf
        return None if not np.isfinite(value) else origin + pd.Timedelta(days=value)

    return BreachRisk(
        p_by_horizon=p,
        date=as_date(0.5),
        date_low=as_date(0.1),
        date_high=as_date(0.9),
        first_breach_day=first,
    )
