"""Is the AI still as sure as it says? Live calibration of the detector and the forecaster.

Both are calibrated offline (the detector's confidence table, the forecaster's conformal
interval scales). Production can drift away from that: operators' verdicts stop matching
the detector's confidence, or actual values stop falling inside the forecast intervals as
often as promised. These measures read only stored data; the heartbeat check turns a drift
into an incident for the component's owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.anomaly.calibration import expected_calibration_error
from services.anomaly.review import latest_verdicts
from services.db.models import DailyAggregate, Forecast, ForecastPoint
from services.forecast.store import DAILY

WINDOW = timedelta(days=30)
# Below these counts a drift is noise: ten bins of a few verdicts each swing by 0.1 or more.
DETECTOR_MIN_VERDICTS = 50
DETECTOR_MAX_ECE = 0.20
# Forecasts are judged on their first week: the horizon nightly refits actually serve.
FORECAST_LEAD_DAYS = 7
FORECAST_MAX_FITS = 1000  # the newest judged fits; enough evidence, bounded cost
FORECAST_MIN_POINTS = 200
FORECAST_NOMINAL = 0.80
FORECAST_TOLERANCE = 0.15  # 65-95 % realised coverage of the 80 % interval is still honest


@dataclass(frozen=True)
class DetectorDrift:
    """Verdicts of the window against the confidence the detector gave those episodes."""

    verdicts: int
    ece: float
    confirmed_rate: float
    mean_confidence: float

    @property
    def drifted(self) -> bool:
        return self.verdicts >= DETECTOR_MIN_VERDICTS and self.ece > DETECTOR_MAX_ECE


@dataclass(frozen=True)
class ForecastDrift:
    """How often the actual busy-hour value fell inside the forecast's 80 % interval."""

    points: int
    series: int
    coverage: float

    @property
    def drifted(self) -> bool:
        return (
            self.points >= FORECAST_MIN_POINTS
            and abs(self.coverage - FORECAST_NOMINAL) > FORECAST_TOLERANCE
        )


def detector_drift(session: Session, *, now: datetime) -> DetectorDrift:
    """ECE of the detector's confidence against the verdicts given in the last 30 days."""
    verdicts = latest_verdicts(session, since=now - WINDOW)
    confidence = verdicts["confidence"].to_numpy(dtype=np.float64)
    outcome = verdicts["confirmed"].to_numpy(dtype=np.float64)
    if not len(verdicts):
        return DetectorDrift(0, float("nan"), float("nan"), float("nan"))
    return DetectorDrift(
        verdicts=len(verdicts),
        ece=expected_calibration_error(confidence, outcome),
        confirmed_rate=float(outcome.mean()),
        mean_confidence=float(np.nanmean(confidence)),
    )


def forecast_drift(session: Session, *, now: datetime) -> ForecastDrift:
    """Realised 80 % coverage of the first week of daily forecasts fitted in the last 30 days."""
    fits = session.execute(
        select(Forecast.id, Forecast.element_id, Forecast.kpi_id, Forecast.training_end)
        .where(
            Forecast.granularity == DAILY,
            Forecast.status == "ok",
            Forecast.fitted_at >= now - WINDOW,
            Forecast.training_end.is_not(None),
            Forecast.training_end <= now - timedelta(days=FORECAST_LEAD_DAYS),
        )
        .order_by(Forecast.fitted_at.desc(), Forecast.id.desc())
        .limit(FORECAST_MAX_FITS)
    ).all()
    if not fits:
        return ForecastDrift(0, 0, float("nan"))
    frame = pd.DataFrame(fits, columns=["forecast_id", "element_id", "kpi_id", "training_end"])
    points = _first_week(session, frame)
    actual = _actuals(session, points)
    judged = points.merge(actual, on=["element_id", "kpi_id", "day"], how="inner")
    if judged.empty:
        return ForecastDrift(0, 0, float("nan"))
    inside = (judged["y"] >= judged["lower_80"]) & (judged["y"] <= judged["upper_80"])
    series = judged[["element_id", "kpi_id"]].drop_duplicates()
    return ForecastDrift(len(judged), len(series), float(inside.mean()))


def _first_week(session: Session, fits: pd.DataFrame) -> pd.DataFrame:
    rows = []
    by_id = fits.set_index("forecast_id")
    ids = [int(i) for i in fits["forecast_id"]]
    # Only points that can be in some fit's first week are read, not whole horizons.
    ends = pd.to_datetime(fits["training_end"], utc=True)
    first = ends.min().to_pydatetime()
    last = (ends.max() + pd.Timedelta(days=FORECAST_LEAD_DAYS + 1)).to_pydatetime()
    for start in range(0, len(ids), 500):  # bounded IN lists on every backend
        chunk = ids[start : start + 500]
        rows.extend(
            session.execute(
                select(
                    ForecastPoint.forecast_id,
                    ForecastPoint.ds,
                    ForecastPoint.lower_80,
                    ForecastPoint.upper_80,
                ).where(
                    ForecastPoint.forecast_id.in_(chunk),
                    ForecastPoint.ds > first,
                    ForecastPoint.ds <= last,
                )
            ).all()
        )
    points = pd.DataFrame(rows, columns=["forecast_id", "ds", "lower_80", "upper_80"])
    points = points.join(by_id, on="forecast_id")
    ds = _utc_days(points["ds"])
    end = _utc_days(points["training_end"])
    lead = (ds - end).dt.days
    points = points.assign(day=ds.dt.date)[(lead >= 1) & (lead <= FORECAST_LEAD_DAYS)]
    return points[["element_id", "kpi_id", "day", "lower_80", "upper_80"]]


def _actuals(session: Session, points: pd.DataFrame) -> pd.DataFrame:
    if points.empty:
        return pd.DataFrame(columns=["element_id", "kpi_id", "day", "y"])
    rows = session.execute(
        select(
            DailyAggregate.element_id,
            DailyAggregate.kpi_id,
            DailyAggregate.day,
            DailyAggregate.busy_hour_value,
        ).where(
            DailyAggregate.kpi_id.in_(sorted({int(k) for k in points["kpi_id"]})),
            DailyAggregate.day >= min(points["day"]),
            DailyAggregate.day <= max(points["day"]),
        )
    ).all()
    return pd.DataFrame(rows, columns=["element_id", "kpi_id", "day", "y"])


def _utc_days(values: pd.Series) -> pd.Series:
    """Stored labels as UTC midnights (SQLite returns them naive, PostgreSQL aware)."""
    stamps = pd.to_datetime(values)
    if stamps.dt.tz is None:
        stamps = stamps.dt.tz_localize(UTC)
    return stamps.dt.tz_convert(UTC).dt.normalize()
