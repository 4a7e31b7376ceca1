"""Daily busy-hour aggregation and hourly means in the NOC's local time zone (pure).

A measurement belongs to the period that ends at its `period_end`, so it is attributed to
the local clock hour and calendar day of the instant just before that end: a 15-minute
value ending at 10:00 counts for hour 9, one ending at local midnight for the day before.
The busy hour of a day is its clock hour with the highest mean; on the autumn DST change
the repeated clock hour is one hour of the day (its two halves are averaged together).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

DAILY_COLUMNS = (
    "element_id",
    "kpi_id",
    "day",
    "busy_hour_value",
    "busy_hour",
    "daily_mean",
    "daily_max",
    "samples",
)
HOURLY_COLUMNS = ("element_id", "kpi_id", "ds", "y", "samples")
_EPOCH = date(1970, 1, 1)
_NS_PER_DAY = 86_400 * 10**9
_NS_PER_HOUR = 3_600 * 10**9


@dataclass(frozen=True)
class DailyMatrix:
    """Per series (rows) and local day (columns): the busy-hour value and daily statistics."""

    days: list[date]
    busy_hour_value: np.ndarray  # float, NaN where the day has no value
    busy_hour: np.ndarray  # int 0-23 local, -1 where the day has no value
    daily_mean: np.ndarray
    daily_max: np.ndarray
    samples: np.ndarray  # int, periods with a value


def local_hour_codes(period_end: pd.DatetimeIndex, zone: ZoneInfo) -> np.ndarray:
    """Local day number (since 1970-01-01) x 24 + local clock hour of each period."""
    if period_end.tz is None:
        raise ValueError("period ends must be timezone-aware")
    ends = period_end.tz_convert("UTC").as_unit("ns")
    local = (ends - pd.Timedelta(1, "ns")).tz_convert(zone).tz_localize(None).as_unit("ns")
    # Wall-clock nanoseconds: the day and hour follow from integer division.
    wall = local.asi8
    return (wall // _NS_PER_DAY) * 24 + (wall % _NS_PER_DAY) // _NS_PER_HOUR


def busy_hour_matrix(
    values: np.ndarray, period_end: pd.DatetimeIndex, *, zone: ZoneInfo
) -> DailyMatrix:
    """Aggregate a (series x period) matrix (NaN = no value) to local days."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(period_end):
        raise ValueError("values must be (series, periods) matching period_end")
    n_series = values.shape[0]
    if len(period_end) == 0:
        empty_f = np.zeros((n_series, 0))
        return DailyMatrix([], empty_f, empty_f.astype(np.int64), empty_f, empty_f, empty_f)
    codes = local_hour_codes(pd.DatetimeIndex(period_end), zone)
    if (np.diff(codes) < 0).any():
        # Only unsorted input (or exotic DST rules) gets here; reduceat needs runs of codes.
        order = np.argsort(codes, kind="stable")
        codes, values = codes[order], values[:, order]
    valid = ~np.isnan(values)
    filled = np.where(valid, values, 0.0)

    hour_starts = np.flatnonzero(np.r_[True, np.diff(codes) != 0])
    hour_sum = np.add.reduceat(filled, hour_starts, axis=1)
    hour_count = np.add.reduceat(valid.astype(np.int64), hour_starts, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        hour_mean = np.where(hour_count > 0, hour_sum / np.maximum(hour_count, 1), np.nan)
    bucket_day = codes[hour_starts] // 24
    bucket_hour = codes[hour_starts] % 24
    day_numbers = np.unique(bucket_day)
    cube = np.full((n_series, len(day_numbers), 24), np.nan)
    cube[:, np.searchsorted(day_numbers, bucket_day), bucket_hour] = hour_mean
    has_hour = ~np.isnan(cube).all(axis=2)
    busy_hour = np.where(has_hour, np.argmax(np.where(np.isnan(cube), -np.inf, cube), axis=2), -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN days stay NaN
        busy_value = np.nanmax(cube, axis=2)

    day_of_column = codes // 24
    day_starts = np.flatnonzero(np.r_[True, np.diff(day_of_column) != 0])
    day_sum = np.add.reduceat(filled, day_starts, axis=1)
    day_count = np.add.reduceat(valid.astype(np.int64), day_starts, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        day_mean = np.where(day_count > 0, day_sum / np.maximum(day_count, 1), np.nan)
    day_max = np.fmax.reduceat(values, day_starts, axis=1)  # fmax skips NaN
    return DailyMatrix(
        days=[_EPOCH + timedelta(days=int(d)) for d in day_numbers],
        busy_hour_value=busy_value,
        busy_hour=busy_hour.astype(np.int64),
        daily_mean=day_mean,
        daily_max=day_max,
        samples=day_count,
    )


def daily_frame(element_ids: np.ndarray, kpi_ids: np.ndarray, daily: DailyMatrix) -> pd.DataFrame:
    """The long form of a DailyMatrix: one row per series and day that has a value."""
    n_series, n_days = daily.samples.shape
    if n_series == 0 or n_days == 0:
        return _empty_daily()
    frame = pd.DataFrame(
        {
            "element_id": np.repeat(np.asarray(element_ids, dtype=np.int64), n_days),
            "kpi_id": np.repeat(np.asarray(kpi_ids, dtype=np.int64), n_days),
            "day": np.tile(np.asarray(daily.days, dtype=object), n_series),
            "busy_hour_value": daily.busy_hour_value.ravel(),
            "busy_hour": daily.busy_hour.ravel(),
            "daily_mean": daily.daily_mean.ravel(),
            "daily_max": daily.daily_max.ravel(),
            "samples": daily.samples.ravel().astype(np.int64),
        }
    )
    return frame[frame["samples"] > 0].reset_index(drop=True)


def busy_hour_daily(frame: pd.DataFrame, *, zone: ZoneInfo) -> pd.DataFrame:
    """element_id, kpi_id, period_end (UTC), value -> one row per element, KPI and local day.

    Columns: element_id, kpi_id, day (date), busy_hour_value, busy_hour, daily_mean,
    daily_max, samples. A day with fewer samples than its cadence implies is incomplete.
    """
    if frame.empty:
        return _empty_daily()
    element_ids, kpi_ids, period_end, matrix = _to_matrix(frame)
    daily = busy_hour_matrix(matrix, period_end, zone=zone)
    out = daily_frame(element_ids, kpi_ids, daily)
    return out.sort_values(["element_id", "kpi_id", "day"], ignore_index=True)


def hourly_means(frame: pd.DataFrame, *, zone: ZoneInfo) -> pd.DataFrame:
    """element_id, kpi_id, period_end (UTC), value -> hourly means per local clock hour.

    Columns: element_id, kpi_id, ds (tz-naive local hour start), y, samples.
    """
    if frame.empty:
        return pd.DataFrame({name: pd.Series(dtype=float) for name in HOURLY_COLUMNS})
    data = frame.dropna(subset=["value"])
    ends = pd.DatetimeIndex(pd.to_datetime(data["period_end"], utc=True))
    codes = local_hour_codes(ends, zone)
    ds = pd.to_datetime(codes * _NS_PER_HOUR, unit="ns")
    grouped = (
        pd.DataFrame(
            {
                "element_id": data["element_id"].to_numpy(dtype=np.int64),
                "kpi_id": data["kpi_id"].to_numpy(dtype=np.int64),
                "ds": ds,
                "value": data["value"].to_numpy(dtype=np.float64),
            }
        )
        .groupby(["element_id", "kpi_id", "ds"], sort=True)["value"]
        .agg(["mean", "count"])
        .reset_index()
    )
    return grouped.rename(columns={"mean": "y", "count": "samples"})[list(HOURLY_COLUMNS)]


def _to_matrix(
    frame: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray, pd.DatetimeIndex, np.ndarray]:
    """Pivot a long frame to (series x sorted period ends); later rows win on repeats."""
    ends = pd.DatetimeIndex(pd.to_datetime(frame["period_end"], utc=True)).as_unit("ns")
    period_codes, periods = pd.factorize(ends, sort=True)
    keys = pd.MultiIndex.from_arrays(
        [frame["element_id"].to_numpy(dtype=np.int64), frame["kpi_id"].to_numpy(dtype=np.int64)]
    )
    series_codes, series = pd.factorize(keys, sort=True)
    matrix = np.full((len(series), len(periods)), np.nan)
    matrix[series_codes, period_codes] = frame["value"].to_numpy(dtype=np.float64)
    element_ids = np.asarray([k[0] for k in series], dtype=np.int64)
    kpi_ids = np.asarray([k[1] for k in series], dtype=np.int64)
    return element_ids, kpi_ids, pd.DatetimeIndex(periods), matrix


def _empty_daily() -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(dtype=np.float64) for name in DAILY_COLUMNS})
    for name in ("element_id", "kpi_id", "busy_hour", "samples"):
        frame[name] = frame[name].astype(np.int64)
    frame["day"] = frame["day"].astype(object)
    return frame
