"""AI outputs: anomaly episodes with feedback, capacity forecasts with breach risk, and the
daily busy-hour aggregates the forecasts are fitted on."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, utcnow


class Anomaly(Base):
    """An anomaly episode on one element and KPI: start, peak, end (or ongoing)."""

    __tablename__ = "anomalies"
    __table_args__ = (
        Index("ix_anomalies_status_started", "status", "started_at"),
        Index("ix_anomalies_element_kpi", "element_id", "kpi_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    element_id: Mapped[int] = mapped_column(ForeignKey("elements.id", ondelete="CASCADE"))
    kpi_id: Mapped[int] = mapped_column(ForeignKey("kpis.id", ondelete="CASCADE"))
    related_kpis: Mapped[list[Any]] = mapped_column(default=list)
    # Episodes on the same site at the same time share a group key.
    group_key: Mapped[str | None] = mapped_column(String(200), index=True)
    started_at: Mapped[datetime]
    peak_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    last_evaluated_at: Mapped[datetime] = mapped_column(default=utcnow)
    observed: Mapped[float] = mapped_column(Float)
    expected: Mapped[float] = mapped_column(Float)
    band_low: Mapped[float] = mapped_column(Float)
    band_high: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    severity: Mapped[str] = mapped_column(String(16))  # critical, major, minor, warning
    severity_score: Mapped[float] = mapped_column(Float, default=0.0)
    data_quality: Mapped[dict[str, Any]] = mapped_column(default=dict)
    detector: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64))
    explanation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")  # acknowledged, resolved
    suppressed: Mapped[bool] = mapped_column(default=False)
    suppressed_reason: Mapped[str | None] = mapped_column(Text)
    change_window_id: Mapped[int | None] = mapped_column(
        ForeignKey("change_windows.id", ondelete="SET NULL")
    )
    # Set when late data re-evaluated the episode's window and changed it.
    revised: Mapped[bool] = mapped_column(default=False)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AnomalyFeedback(Base):
    """A human verdict on an episode; it feeds calibration and the disagreement queue."""

    __tablename__ = "anomaly_feedback"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    anomaly_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("anomalies.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # true_anomaly, expected, not_anomaly, new_normal
    label: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Forecast(Base):
    """One fitted forecast for an element and KPI, with its backtest quality."""

    __tablename__ = "forecasts"
    __table_args__ = (Index("ix_forecasts_series_current", "element_id", "kpi_id", "is_current"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    element_id: Mapped[int] = mapped_column(ForeignKey("elements.id", ondelete="CASCADE"))
    kpi_id: Mapped[int] = mapped_column(ForeignKey("kpis.id", ondelete="CASCADE"))
    fitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    granularity: Mapped[str] = mapped_column(String(24), default="daily_busy_hour")
    training_start: Mapped[datetime | None]
    training_end: Mapped[datetime | None]
    horizon_days: Mapped[int] = mapped_column(default=90)
    model: Mapped[str] = mapped_column(String(32))  # prophet, seasonal_naive
    model_version: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(24))  # ok, insufficient_history, fallback, failed
    status_detail: Mapped[str] = mapped_column(Text, default="")
    is_current: Mapped[bool] = mapped_column(default=True)
    backtest: Mapped[dict[str, Any]] = mapped_column(default=dict)  # mape, coverage, baseline
    components: Mapped[dict[str, Any]] = mapped_column(default=dict)
    changepoints: Mapped[list[Any]] = mapped_column(default=list)
    # Fitted parameters kept for warm-starting the next fit.
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    fit_seconds: Mapped[float | None] = mapped_column(Float)


class ForecastPoint(Base):
    """One future period of a forecast with its calibrated 80% and 95% intervals."""

    __tablename__ = "forecast_points"
    __table_args__ = (UniqueConstraint("forecast_id", "ds"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    forecast_id: Mapped[int] = mapped_column(BigId, ForeignKey("forecasts.id", ondelete="CASCADE"))
    ds: Mapped[datetime]
    yhat: Mapped[float] = mapped_column(Float)
    lower_80: Mapped[float] = mapped_column(Float)
    upper_80: Mapped[float] = mapped_column(Float)
    lower_95: Mapped[float] = mapped_column(Float)
    upper_95: Mapped[float] = mapped_column(Float)
    trend: Mapped[float | None] = mapped_column(Float)


class CapacityRisk(Base):
    """Probability of crossing the capacity threshold by horizon, and the likely date."""

    __tablename__ = "capacity_risks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    forecast_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("forecasts.id", ondelete="CASCADE"), unique=True
    )
    element_id: Mapped[int] = mapped_column(ForeignKey("elements.id", ondelete="CASCADE"))
    kpi_id: Mapped[int] = mapped_column(ForeignKey("kpis.id", ondelete="CASCADE"))
    threshold: Mapped[float] = mapped_column(Float)
    p_breach_30: Mapped[float | None] = mapped_column(Float)
    p_breach_60: Mapped[float | None] = mapped_column(Float)
    p_breach_90: Mapped[float | None] = mapped_column(Float)
    breach_date: Mapped[datetime | None]
    breach_date_low: Mapped[datetime | None]
    breach_date_high: Mapped[datetime | None]
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ForecastSamples(Base):
    """Predictive sample paths of a current forecast, kept so what-if can recompute risk."""

    __tablename__ = "forecast_samples"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    forecast_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("forecasts.id", ondelete="CASCADE"), unique=True
    )
    n_paths: Mapped[int]
    horizon: Mapped[int]
    # zlib-compressed float32 array of shape (n_paths, horizon), C order.
    paths: Mapped[bytes] = mapped_column(LargeBinary)


class DailyAggregate(Base):
    """One element's KPI on one NOC-local calendar day: its busy-hour value and daily stats."""

    __tablename__ = "kpi_daily"
    # The natural key is the primary key (no rowid tree on SQLite); reads of every series of
    # a KPI use the (kpi, day) index.
    __table_args__ = (
        Index("ix_kpi_daily_kpi_day", "kpi_id", "day"),
        {"sqlite_with_rowid": False},
    )

    element_id: Mapped[int] = mapped_column(
        ForeignKey("elements.id", ondelete="CASCADE"), primary_key=True
    )
    kpi_id: Mapped[int] = mapped_column(ForeignKey("kpis.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    # The mean of the busiest clock hour (max of hourly means), and that hour (0-23, local).
    busy_hour_value: Mapped[float] = mapped_column(Float)
    busy_hour: Mapped[int]
    daily_mean: Mapped[float] = mapped_column(Float)
    daily_max: Mapped[float] = mapped_column(Float)
    # Periods seen that day; fewer than the cadence implies marks an incomplete day.
    samples: Mapped[int]
    source: Mapped[str] = mapped_column(String(24), default="measurements")  # simulator_archive
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
