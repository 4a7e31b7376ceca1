"""Daily busy-hour aggregation and hourly means in the NOC's local time zone."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from services.forecast.aggregate import busy_hour_daily, busy_hour_matrix, hourly_means

UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


def _frame(ends: pd.DatetimeIndex, values: np.ndarray, element_id: int = 1, kpi_id: int = 2):
    return pd.DataFrame(
        {"element_id": element_id, "kpi_id": kpi_id, "period_end": ends, "value": values}
    )


def _quarter_hours(start: str, end: str) -> pd.DatetimeIndex:
    """15-minute period ends in (start, end], UTC."""
    return pd.date_range(start, end, freq="15min", tz="UTC", inclusive="right")


def _reference(frame: pd.DataFrame, zone: ZoneInfo) -> pd.DataFrame:
    """The definition, spelled out with groupby: what the vectorised version must equal."""
    data = frame.dropna(subset=["value"]).copy()
    local = (data["period_end"] - pd.Timedelta(1, "ns")).dt.tz_convert(zone).dt.tz_localize(None)
    data["day"] = local.dt.date
    data["hour"] = local.dt.hour
    hourly = data.groupby(["element_id", "kpi_id", "day", "hour"])["value"].mean()
    rows = []
    for (element, kpi, day), group in data.groupby(["element_id", "kpi_id", "day"]):
        hours = hourly.loc[(element, kpi, day)]
        rows.append(
            {
                "element_id": element,
                "kpi_id": kpi,
                "day": day,
                "busy_hour_value": hours.max(),
                "busy_hour": int(hours.idxmax()),
                "daily_mean": group["value"].mean(),
                "daily_max": group["value"].max(),
                "samples": len(group),
            }
        )
    return pd.DataFrame(rows)


def test_busy_hour_is_the_hour_with_the_highest_mean_and_midnight_closes_the_day() -> None:
    ends = _quarter_hours("2026-05-04", "2026-05-06")
    values = np.ones(len(ends))
    local_hour = (ends - pd.Timedelta(1, "ns")).hour
    values[local_hour == 19] = [10.0, 20.0, 30.0, 40.0] * 2  # mean 25 on both days
    values[(local_hour == 20) & (ends.day == 4)] = 60.0
    values[np.flatnonzero(local_hour == 20)[1]] = 1.0  # hour 20 of 4 May: three 60s and a 1
    out = busy_hour_daily(_frame(ends, values), zone=UTC)
    assert list(out["day"]) == [date(2026, 5, 4), date(2026, 5, 5)]
    first, second = out.iloc[0], out.iloc[1]
    assert first["busy_hour"] == 20
    assert first["busy_hour_value"] == pytest.approx((60 * 3 + 1) / 4)
    assert first["daily_max"] == 60.0
    assert second["busy_hour"] == 19
    assert second["busy_hour_value"] == pytest.approx(25.0)
    assert list(out["samples"]) == [96, 96]  # the period ending at 00:00 closes the day before


def test_local_days_follow_the_zone() -> None:
    # 22:15 UTC on 4 May is 00:15 in Berlin (UTC+2): the value belongs to 5 May, hour 0.
    ends = pd.DatetimeIndex(["2026-05-04T22:15Z", "2026-05-04T21:45Z"])
    out = busy_hour_daily(_frame(ends, np.array([7.0, 3.0])), zone=BERLIN)
    assert list(out["day"]) == [date(2026, 5, 4), date(2026, 5, 5)]
    assert list(out["busy_hour"]) == [23, 0]


@pytest.mark.parametrize(
    ("day", "samples", "hours"),
    [("2026-03-29", 92, 23), ("2026-10-25", 100, 24), ("2026-06-01", 96, 24)],
)
def test_dst_days_have_23_or_25_hours_of_samples(day: str, samples: int, hours: int) -> None:
    start = pd.Timestamp(day, tz=BERLIN)
    end = start + pd.Timedelta(days=2)
    ends = pd.date_range(start.tz_convert("UTC"), end.tz_convert("UTC"), freq="15min")[1:]
    out = busy_hour_daily(_frame(ends, np.arange(len(ends), dtype=float)), zone=BERLIN)
    row = out.set_index("day").loc[pd.Timestamp(day).date()]
    assert row["samples"] == samples
    hourly = hourly_means(_frame(ends, np.ones(len(ends))), zone=BERLIN)
    on_day = hourly[hourly["ds"].dt.date == pd.Timestamp(day).date()]
    assert len(on_day) == hours
    if samples == 100:
        # The repeated 02:00 clock hour is one hour made of eight periods.
        assert on_day.set_index(on_day["ds"].dt.hour).loc[2, "samples"] == 8


def test_gaps_reduce_samples_and_empty_days_are_left_out() -> None:
    ends = _quarter_hours("2026-05-04", "2026-05-07")
    values = np.full(len(ends), 5.0)
    values[:10] = np.nan  # the first day misses ten periods
    values[96:192] = np.nan  # the second day has nothing
    out = busy_hour_daily(_frame(ends, values), zone=UTC)
    assert list(out["day"]) == [date(2026, 5, 4), date(2026, 5, 6)]
    assert list(out["samples"]) == [86, 96]


def test_matches_the_groupby_definition_on_random_series_across_dst() -> None:
    rng = np.random.default_rng(3)
    ends = _quarter_hours("2026-10-20", "2026-10-30")
    parts = []
    for element, kpi in [(1, 1), (1, 2), (5, 1)]:
        values = rng.gamma(2.0, 10.0, len(ends))
        values[rng.random(len(ends)) < 0.2] = np.nan
        parts.append(_frame(ends, values, element, kpi))
    frame = pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=1)  # any order
    out = busy_hour_daily(frame, zone=BERLIN)
    expected = _reference(frame, BERLIN)
    pd.testing.assert_frame_equal(
        out.reset_index(drop=True), expected, check_dtype=False, check_exact=False
    )


def test_matrix_form_equals_long_form() -> None:
    ends = _quarter_hours("2026-05-04", "2026-05-05")
    matrix = np.vstack([np.arange(96.0), np.arange(96.0)[::-1]])
    daily = busy_hour_matrix(matrix, ends, zone=UTC)
    assert daily.days == [date(2026, 5, 4)]
    assert list(daily.busy_hour[:, 0]) == [23, 0]
    assert daily.busy_hour_value[0, 0] == pytest.approx(np.mean([92, 93, 94, 95]))


def test_hourly_means_are_local_clock_hours() -> None:
    ends = pd.DatetimeIndex(["2026-05-04T08:15Z", "2026-05-04T08:30Z", "2026-05-04T09:00Z"])
    out = hourly_means(_frame(ends, np.array([1.0, 3.0, 8.0])), zone=BERLIN)
    assert list(out["ds"]) == [pd.Timestamp("2026-05-04 10:00")]
    assert out["y"].iloc[0] == pytest.approx(4.0)
    assert out["samples"].iloc[0] == 3


def test_empty_input_gives_empty_frames_with_the_columns() -> None:
    empty = pd.DataFrame(columns=["element_id", "kpi_id", "period_end", "value"])
    assert busy_hour_daily(empty, zone=UTC).empty
    assert list(hourly_means(empty, zone=UTC).columns) == [
        "element_id",
        "kpi_id",
        "ds",
        "y",
        "samples",
    ]


def test_naive_period_ends_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        busy_hour_matrix(np.ones((1, 1)), pd.DatetimeIndex(["2026-05-04 10:00"]), zone=UTC)
