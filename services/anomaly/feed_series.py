"""The series behind an episode's chart: measurements, expected value, normal range and alert
threshold from the detector, downsampled.

Two bands, two meanings: the normal range (expected +- NORMAL_SIGMA robust sigma) is what
ordinary periods look like; the alert band (band_low/band_high, ~28 sigma) is where one
period alone reaches the default alert confidence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.anomaly.detect import NORMAL_COVERAGE, NORMAL_SIGMA, band_for_series, normal_range
from services.db.models import Anomaly, Kpi, Measurement, utcnow
from services.errors import NotFound

log = logging.getLogger(__name__)

# The seasonal detector reads weeks of history to build an hour-of-week profile; the chart
# loads that much before the shown window so the band it draws matches what detection saw.
BAND_HISTORY = timedelta(days=28)
MIN_CONTEXT = timedelta(days=1)
MAX_CONTEXT = timedelta(days=14)
MAX_POINTS = 2000
COLUMNS = ["period_end", "value", "expected", "normal_low", "normal_high", "band_low", "band_high"]
BAND_COLUMNS = COLUMNS[2:]


@dataclass(frozen=True)
class EpisodeSeries:
    """What the chart draws: the shown window, its (downsampled) points and the band's origin."""

    frame: pd.DataFrame  # COLUMNS; expected/ranges NaN where the detector gave none
    window_start: datetime
    window_end: datetime
    points: int  # measurements in the window before downsampling
    band: str  # "detector", or "failed" when the detector could not score this series
    note: str
    normal_sigma: float = NORMAL_SIGMA  # normal range: expected +- this many robust sigma
    normal_coverage: float = NORMAL_COVERAGE  # share of ordinary periods inside it

    @property
    def downsampled(self) -> bool:
        """True when fewer points are drawn than were measured."""
        return len(self.frame) < self.points


def episode_series(
    session: Session,
    *,
    anomaly_id: int,
    max_points: int = MAX_POINTS,
    now: datetime | None = None,
) -> EpisodeSeries:
    """The episode's element/KPI series around the episode, with the expected band."""
    anomaly = session.get(Anomaly, anomaly_id)
    if anomaly is None:
        raise NotFound(f"There is no anomaly episode #{anomaly_id}.")
    start, end = display_window(anomaly.started_at, anomaly.ended_at, now=now or utcnow())
    values = load_values(
        session,
        element_id=anomaly.element_id,
        kpi_id=anomaly.kpi_id,
        start=start - BAND_HISTORY,
        end=end,
    )
    band, state, note = expected_band(values)
    kpi = session.get(Kpi, anomaly.kpi_id)
    if band is not None and kpi is not None:
        # A range below 0 % or above 100 % says nothing a value could do: clip to the valid range.
        band = band.assign(
            **{
                column: band[column].clip(lower=kpi.valid_min, upper=kpi.valid_max)
                for column in BAND_COLUMNS[1:]
            }
        )
    frame = pd.DataFrame({"period_end": values.index, "value": values.to_numpy(dtype=float)})
    for column in BAND_COLUMNS:
        frame[column] = band[column].to_numpy(dtype=float) if band is not None else np.nan
    shown = frame[(frame["period_end"] >= start) & (frame["period_end"] <= end)].reset_index(
        drop=True
    )
    points = len(shown)
    if points > max_points:
        shown = shown.iloc[downsample_indices(shown, max_points)].reset_index(drop=True)
        note = (note + " " if note else "") + (
            f"{points:,} periods drawn as {len(shown):,} points (largest-triangle downsampling "
            "keeps peaks and dips)."
        )
    return EpisodeSeries(
        frame=shown[COLUMNS],
        window_start=start,
        window_end=end,
        points=points,
        band=state,
        note=note,
    )


def display_window(
    started_at: datetime, ended_at: datetime | None, *, now: datetime
) -> tuple[datetime, datetime]:
    """Context before the episode (twice its length, 1-14 days) and a little after it."""
    end_of_episode = ended_at or now
    duration = max(end_of_episode - started_at, timedelta(minutes=15))
    before = min(max(duration * 2, MIN_CONTEXT), MAX_CONTEXT)
    after = min(max(duration, timedelta(hours=6)), MAX_CONTEXT) if ended_at else timedelta(0)
    return started_at - before, min(end_of_episode + after, max(now, end_of_episode))


def load_values(
    session: Session, *, element_id: int, kpi_id: int, start: datetime, end: datetime
) -> pd.Series:
    """Latest revision of each period (superseded corrections left out), ordered by time."""
    rows = session.execute(
        select(Measurement.period_end, Measurement.value)
        .where(Measurement.element_id == element_id)
        .where(Measurement.kpi_id == kpi_id)
        .where(Measurement.period_end >= start)
        .where(Measurement.period_end <= end)
        .where(Measurement.superseded.is_(False))
        .order_by(Measurement.period_end, Measurement.revision)
    ).all()
    if not rows:
        return pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
    index = pd.DatetimeIndex([r[0] for r in rows]).tz_convert("UTC")
    values = pd.Series([float(r[1]) for r in rows], index=index, dtype=float)
    # Two unsuperseded revisions of one period should not exist; if they do, the newest wins.
    return values[~values.index.duplicated(keep="last")]


def expected_band(values: pd.Series) -> tuple[pd.DataFrame | None, str, str]:
    """The detector's causal expected value, normal range and alert band for every period."""
    if values.empty:
        return None, "detector", ""
    try:
        result = band_for_series(values)
    except Exception:  # a chart must not fail because one series confuses the detector
        log.exception("band_for_series failed on a series of %d points", len(values))
        return None, "failed", "The expected band could not be computed for this series."
    aligned = result.reindex(values.index)
    low, high = normal_range(aligned["expected"], aligned["band_low"], aligned["band_high"])
    return aligned.assign(normal_low=low, normal_high=high), "detector", ""


def downsample_indices(frame: pd.DataFrame, threshold: int) -> np.ndarray:
    """LTTB positions plus the series' highest and lowest points, which a peak chart must show."""
    values = frame["value"].to_numpy(dtype=float)
    if threshold >= len(frame) or not np.isfinite(values).any():
        return lttb_indices(frame, threshold)
    extremes = [int(np.nanargmax(values)), int(np.nanargmin(values))]
    return np.union1d(lttb_indices(frame, max(threshold - 2, 3)), extremes)


def lttb_indices(frame: pd.DataFrame, threshold: int) -> np.ndarray:
    """Row positions kept by largest-triangle-three-buckets downsampling of `value` over time."""
    n = len(frame)
    if threshold >= n or threshold < 3:
        return np.arange(n)
    x = frame["period_end"].astype("int64").to_numpy(dtype=float)
    y = frame["value"].to_numpy(dtype=float)
    # A missing value must not win a bucket: treat it as the bucket's mean-free baseline.
    y = np.where(np.isnan(y), np.nanmean(y) if np.isfinite(np.nanmean(y)) else 0.0, y)
    edges = np.linspace(1, n - 1, threshold - 1).astype(int)
    kept = [0]
    previous = 0
    for b in range(threshold - 2):
        lo, hi = edges[b], edges[b + 1]
        nxt_lo, nxt_hi = edges[b + 1], edges[b + 2] if b + 2 < len(edges) else n
        avg_x = x[nxt_lo:nxt_hi].mean() if nxt_hi > nxt_lo else x[-1]
        avg_y = y[nxt_lo:nxt_hi].mean() if nxt_hi > nxt_lo else y[-1]
        area = np.abs(
            (x[previous] - avg_x) * (y[lo:hi] - y[previous])
            - (x[previous] - x[lo:hi]) * (avg_y - y[previous])
        )
        previous = lo + int(np.argmax(area)) if hi > lo else lo
        kept.append(previous)
    kept.append(n - 1)
    return np.unique(np.asarray(kept))
