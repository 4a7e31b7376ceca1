"""Daily, weekly and public-holiday traffic shapes in the NOC's local time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

PROFILES: tuple[str, ...] = ("residential", "business", "mixed")
MINUTES_PER_DAY = 1440
HOLIDAY_KIND = 7  # day kinds 0-6 are Monday-Sunday

# (centre hour, width in hours, amplitude) of each bump in a day's load shape.
_Bumps = tuple[tuple[float, float, float], ...]
_RESIDENTIAL_WEEKDAY: _Bumps = (
    (8.0, 1.1, 0.28),
    (12.5, 1.4, 0.32),
    (17.5, 2.0, 0.42),
    (20.75, 1.5, 0.72),
)
_RESIDENTIAL_WEEKEND: _Bumps = ((10.75, 1.8, 0.42), (14.5, 2.4, 0.48), (20.5, 1.7, 0.72))
_BUSINESS_WEEKDAY: _Bumps = (
    (9.5, 1.2, 0.68),
    (12.6, 0.8, 0.34),
    (15.0, 1.7, 0.66),
    (19.0, 1.4, 0.24),
)
_BUSINESS_WEEKEND: _Bumps = ((13.0, 3.0, 0.34), (19.5, 2.0, 0.2))
_FLOOR = 0.06

# Level of each day kind (Mon..Sun, holiday): business cells empty out at weekends,
# residential ones fill up.
_RESIDENTIAL_LEVEL = (0.93, 0.93, 0.94, 0.95, 0.98, 1.06, 1.04, 1.07)
_BUSINESS_LEVEL = (1.0, 1.0, 1.0, 1.0, 0.95, 0.55, 0.45, 0.42)

COUNTRIES: tuple[str, ...] = ("DE", "GB", "FR", "US")


def easter_sunday(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    leap = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * leap) // 451
    month = (h + leap - 7 * m + 114) // 31
    day = (h + leap - 7 * m + 114) % 31 + 1
    return dt.date(year, month, day)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th (1-based; -1 = last) given weekday of a month."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    last = nxt - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def public_holidays(country: str, year: int) -> frozenset[dt.date]:
    """Nationwide public holidays of a country in a year."""
    easter = easter_sunday(year)

    def rel(days: int) -> dt.date:
        return easter + dt.timedelta(days=days)

    def fixed(*month_days: tuple[int, int]) -> list[dt.date]:
        return [dt.date(year, m, d) for m, d in month_days]

    if country == "DE":
        days = [*fixed((1, 1), (5, 1), (10, 3), (12, 25), (12, 26))]
        days += [rel(-2), rel(1), rel(39), rel(50)]
    elif country == "GB":
        days = [*fixed((1, 1), (12, 25), (12, 26)), rel(-2), rel(1)]
        days += [_nth_weekday(year, 5, 0, 1), _nth_weekday(year, 5, 0, -1)]
        days += [_nth_weekday(year, 8, 0, -1)]
    elif country == "FR":
        days = [*fixed((1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11))]
        days += [*fixed((12, 25)), rel(1), rel(39), rel(50)]
    elif country == "US":
        days = [*fixed((1, 1), (6, 19), (7, 4), (11, 11), (12, 25))]
        days += [_nth_weekday(year, 1, 0, 3), _nth_weekday(year, 2, 0, 3)]
        days += [_nth_weekday(year, 5, 0, -1), _nth_weekday(year, 9, 0, 1)]
        days += [_nth_weekday(year, 10, 0, 2), _nth_weekday(year, 11, 3, 4)]
    else:
        raise ValueError(f"unknown country {country!r}; expected one of {COUNTRIES}")
    return frozenset(days)


def _shape(bumps: _Bumps) -> np.ndarray:
    """Load over the minutes of one day: a floor plus circular Gaussian bumps."""
    hours = np.arange(MINUTES_PER_DAY) / 60.0
    out = np.full(MINUTES_PER_DAY, _FLOOR)
    for centre, width, amplitude in bumps:
        dist = np.abs(hours - centre)
        dist = np.minimum(dist, 24.0 - dist)
        out += amplitude * np.exp(-0.5 * (dist / width) ** 2)
    return out


def _grid_for(weekday: _Bumps, weekend: _Bumps, level: tuple[float, ...]) -> np.ndarray:
    shapes = [_shape(weekday)] * 5 + [_shape(weekend)] * 3
    return np.stack([s * lv for s, lv in zip(shapes, level, strict=True)])


def profile_grid() -> np.ndarray:
    """Load factor by (profile, day kind, local minute), peaking at 1.0 over a normal week."""
    residential = _grid_for(_RESIDENTIAL_WEEKDAY, _RESIDENTIAL_WEEKEND, _RESIDENTIAL_LEVEL)
    business = _grid_for(_BUSINESS_WEEKDAY, _BUSINESS_WEEKEND, _BUSINESS_LEVEL)
    residential /= residential[:HOLIDAY_KIND].max()
    business /= business[:HOLIDAY_KIND].max()
    mixed = 0.5 * (residential + business)
    mixed /= mixed[:HOLIDAY_KIND].max()
    return np.stack([residential, business, mixed])


@dataclass(frozen=True)
class TimeFeatures:
    """Calendar features of period midpoints in local time."""

    minute_of_day: np.ndarray  # int, local minute of the period's midpoint
    day_kind: np.ndarray  # int, 0-6 Monday-Sunday, 7 public holiday
    day_index: np.ndarray  # int, local calendar day counted from 1970-01-01


def time_features(
    period_end_ns: np.ndarray, *, period_ns: int, tz: str, country: str
) -> TimeFeatures:
    """Local-time calendar features for periods given by their end (UTC epoch ns)."""
    mid = pd.DatetimeIndex(period_end_ns - period_ns // 2, tz="UTC").tz_convert(tz)
    minute = np.asarray(mid.hour * 60 + mid.minute, dtype=np.int64)
    local_dates = mid.tz_localize(None).normalize()
    day_index = np.asarray(
        (local_dates - pd.Timestamp("1970-01-01")) // pd.Timedelta(days=1), dtype=np.int64
    )
    kind = np.asarray(mid.day_of_week, dtype=np.int64)
    years = sorted(set(np.asarray(mid.year).tolist()))
    holidays = set().union(*(public_holidays(country, y) for y in years)) if years else set()
    if holidays:
        epoch = dt.date(1970, 1, 1)
        holiday_days = np.array([(d - epoch).days for d in holidays], dtype=np.int64)
        kind = np.where(np.isin(day_index, holiday_days), HOLIDAY_KIND, kind)
    return TimeFeatures(minute_of_day=minute, day_kind=kind, day_index=day_index)
