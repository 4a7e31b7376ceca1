"""Stored forecasts: which KPIs are forecast, saving a fit, and the queries pages and API read.

Forecast periods are calendar labels: a daily busy-hour forecast's `ds` is the NOC-local day,
stored as that date at 00:00 UTC and read back tz-naive, so it lines up with the daily
history (`kpi_daily.day`). Only the current forecast of a series keeps its sample paths.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from services.db.models import (
    CapacityRisk,
    DailyAggregate,
    Element,
    Forecast,
    ForecastPoint,
    ForecastSamples,
    Kpi,
    utcnow,
)
from services.forecast.result import thin_samples

if TYPE_CHECKING:
    from services.forecast.breach import BreachRisk
    from services.forecast.model import ForecastResult

DAILY = "daily_busy_hour"
HOURLY = "hourly"
# Forecast without a capacity threshold: trend and seasonality only, no breach risk.
EXTRA_KPIS = ("active_users",)
POINT_COLUMNS = ("ds", "yhat", "lower_80", "upper_80", "lower_95", "upper_95", "trend")
PORTFOLIO_COLUMNS = (
    "forecast_id", "element_id", "kpi_id", "dn", "element_name", "region", "domain", "kpi",
    "unit", "threshold", "p_breach_30", "p_breach_60", "p_breach_90", "breach_date",
    "breach_date_low", "breach_date_high", "model", "model_version", "status", "status_detail",
    "mape", "baseline_mape", "coverage_80", "coverage_95", "fitted_at", "last_value",
)  # fmt: skip


def forecast_kpis(session: Session) -> list[Kpi]:
    """Every KPI with a capacity threshold, plus the demand KPIs forecast without one."""
    return list(
        session.scalars(
            select(Kpi)
            .where(or_(Kpi.capacity_threshold.is_not(None), Kpi.name.in_(EXTRA_KPIS)))
            .order_by(Kpi.name)
        )
    )


def save_forecast(
    session: Session,
    *,
    element_id: int,
    kpi_id: int,
    granularity: str,
    result: ForecastResult,
    risk: BreachRisk | None,
    threshold: float | None,
    horizon_days: int,
    training_start: datetime | pd.Timestamp | None,
    training_end: datetime | pd.Timestamp | None,
    keep_paths: int = 100,
) -> int:
    """Store a fit as the series' current forecast; the previous one loses its samples."""
    previous = list(
        session.scalars(
            select(Forecast.id).where(
                Forecast.element_id == element_id,
                Forecast.kpi_id == kpi_id,
                Forecast.granularity == granularity,
                Forecast.is_current.is_(True),
            )
        )
    )
    if previous:
        session.execute(update(Forecast).where(Forecast.id.in_(previous)).values(is_current=False))
        session.execute(delete(ForecastSamples).where(ForecastSamples.forecast_id.in_(previous)))
    forecast = Forecast(
        element_id=element_id,
        kpi_id=kpi_id,
        fitted_at=utcnow(),
        granularity=granularity,
        training_start=_utc(training_start),
        training_end=_utc(training_end),
        horizon_days=int(horizon_days),
        model=result.model,
        model_version=result.model_version,
        status=result.status,
        status_detail=result.status_detail,
        is_current=True,
        backtest=_jsonable(result.backtest or {}),
        components=_jsonable(result.components or {}),
        changepoints=_jsonable(result.changepoints or []),
        params=_jsonable(result.params or {}),
        fit_seconds=float(result.fit_seconds) if result.fit_seconds is not None else None,
    )
    session.add(forecast)
    session.flush()
    points = _point_rows(forecast.id, result.frame)
    if points:
        # Core insert on the table: the ORM's bulk path costs more per row than the row
        # itself, and the storing process is what limits a parallel forecast run.
        session.execute(insert(ForecastPoint.__table__), points)
    paths = _kept_paths(result.samples, keep_paths)
    if paths is not None:
        session.add(
            ForecastSamples(
                forecast_id=forecast.id,
                n_paths=paths.shape[0],
                horizon=paths.shape[1],
                paths=encode_paths(paths),
            )
        )
    # NaN = a horizon the forecast does not reach: stored as unknown, not as "no breach".
    p = {
        int(h): None if math.isnan(float(v)) else float(v)
        for h, v in (risk.p_by_horizon.items() if risk is not None else ())
    }
    if risk is not None and threshold is not None and any(v is not None for v in p.values()):
        session.add(
            CapacityRisk(
                forecast_id=forecast.id,
                element_id=element_id,
                kpi_id=kpi_id,
                threshold=float(threshold),
                p_breach_30=p.get(30),
                p_breach_60=p.get(60),
                p_breach_90=p.get(90),
                breach_date=_utc(risk.date),
                breach_date_low=_utc(risk.date_low),
                breach_date_high=_utc(risk.date_high),
            )
        )
    session.flush()
    return forecast.id


def prune_superseded(session: Session, *, older_than: timedelta = timedelta(days=35)) -> int:
    """Delete superseded forecasts fitted more than `older_than` ago (their rows cascade)."""
    statement = delete(Forecast).where(
        Forecast.is_current.is_(False), Forecast.fitted_at < utcnow() - older_than
    )
    return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]


def current_params(
    session: Session, pairs: Iterable[tuple[int, int]], *, granularity: str = DAILY
) -> dict[tuple[int, int], tuple[dict[str, Any], dict[str, Any]]]:
    """(warm-start params, backtest) of the current forecasts of the given series."""
    wanted = {(int(e), int(k)) for e, k in pairs}
    if not wanted:
        return {}
    kpi_ids = sorted({k for _e, k in wanted})
    rows = session.execute(
        select(Forecast.element_id, Forecast.kpi_id, Forecast.params, Forecast.backtest).where(
            Forecast.is_current.is_(True),
            Forecast.granularity == granularity,
            Forecast.kpi_id.in_(kpi_ids),
        )
    )
    return {
        (e, k): (params or {}, backtest or {})
        for e, k, params, backtest in rows
        if (e, k) in wanted
    }


def portfolio(
    session: Session,
    *,
    region: str | None = None,
    domain: str | None = None,
    kpi: str | None = None,
    status: str | None = None,
    element_id: int | None = None,
    min_p90: float | None = None,
    granularity: str = DAILY,
    limit: int | None = None,
) -> pd.DataFrame:
    """Current forecasts ranked by risk: 90-day then 30-day breach probability, then date."""
    last_value = (
        select(DailyAggregate.busy_hour_value)
        .where(
            DailyAggregate.element_id == Forecast.element_id,
            DailyAggregate.kpi_id == Forecast.kpi_id,
        )
        .order_by(DailyAggregate.day.desc())
        .limit(1)
        .correlate(Forecast)
        .scalar_subquery()
    )
    query = (
        select(
            Forecast.id.label("forecast_id"),
            Forecast.element_id,
            Forecast.kpi_id,
            Element.dn,
            Element.name.label("element_name"),
            Element.region,
            Element.domain,
            Kpi.name.label("kpi"),
            Kpi.unit,
            Kpi.capacity_threshold,
            CapacityRisk.threshold,
            CapacityRisk.p_breach_30,
            CapacityRisk.p_breach_60,
            CapacityRisk.p_breach_90,
            CapacityRisk.breach_date,
            CapacityRisk.breach_date_low,
            CapacityRisk.breach_date_high,
            Forecast.model,
            Forecast.model_version,
            Forecast.status,
            Forecast.status_detail,
            Forecast.backtest,
            Forecast.fitted_at,
            last_value.label("last_value"),
        )
        .join(Element, Element.id == Forecast.element_id)
        .join(Kpi, Kpi.id == Forecast.kpi_id)
        .outerjoin(CapacityRisk, CapacityRisk.forecast_id == Forecast.id)
        .where(Forecast.is_current.is_(True), Forecast.granularity == granularity)
    )
    if region is not None:
        query = query.where(Element.region == region)
    if domain is not None:
        query = query.where(Element.domain == domain)
    if kpi is not None:
        query = query.where(Kpi.name == kpi)
    if status is not None:
        query = query.where(Forecast.status.in_(status.split(",")))
    if element_id is not None:
        query = query.where(Forecast.element_id == element_id)
    if min_p90 is not None:
        query = query.where(CapacityRisk.p_breach_90 >= min_p90)
    records = []
    for row in session.execute(query):
        record = dict(row._mapping)
        # A series without a risk row (no threshold, too little history) still shows the KPI's.
        kpi_threshold = record.pop("capacity_threshold")
        if record["threshold"] is None:
            record["threshold"] = kpi_threshold
        record.update(backtest_quality(record.pop("backtest") or {}, record["model"]))
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=list(PORTFOLIO_COLUMNS))
    frame["fitted_at"] = pd.to_datetime(frame["fitted_at"], utc=True)
    for column in ("breach_date", "breach_date_low", "breach_date_high"):
        # Breach dates are day labels (stored at 00:00 UTC): naive, like the history's days.
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_localize(None)
    for column in ("threshold", "p_breach_30", "p_breach_60", "p_breach_90", "last_value",
                   "mape", "baseline_mape", "coverage_80", "coverage_95"):  # fmt: skip
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame = frame.sort_values(
        ["p_breach_90", "p_breach_30", "breach_date", "dn", "kpi"],
        ascending=[False, False, True, True, True],
        na_position="last",
        kind="stable",
        ignore_index=True,
    )
    return frame.head(limit) if limit is not None else frame


def backtest_quality(backtest: dict[str, Any], model: str | None) -> dict[str, float | None]:
    """MAPE and raw interval coverage of the model that produced the forecast, and naive's."""
    used = backtest.get("seasonal_naive" if model == "seasonal_naive" else "prophet") or {}
    naive = backtest.get("seasonal_naive") or {}
    return {
        "mape": _number(used.get("mape")),
        "baseline_mape": _number(naive.get("mape")),
        "coverage_80": _number(used.get("coverage_80")),
        "coverage_95": _number(used.get("coverage_95")),
    }


@dataclass
class SeriesDetail:
    """Everything the series page shows about one element's KPI forecast."""

    element: dict[str, Any]  # id, dn, name, region, domain, element_type
    kpi: dict[str, Any]  # id, name, unit, threshold, higher_is_worse
    forecast: dict[str, Any]  # id, fitted_at, model, status, backtest, components, ...
    history: pd.DataFrame  # ds (tz-naive local day), y (daily busy-hour value)
    points: pd.DataFrame  # POINT_COLUMNS, ds tz-naive like history
    paths: np.ndarray | None  # (horizon, n_paths) float32, like ForecastResult.samples
    risk: dict[str, Any] | None  # threshold, p_breach_30/60/90, breach_date, low, high


def series_detail(
    session: Session, *, element_id: int, kpi: str, granularity: str = DAILY
) -> SeriesDetail | None:
    """The current forecast of one series with its history, points, paths and risk."""
    found = session.execute(
        select(Forecast, Element, Kpi)
        .join(Element, Element.id == Forecast.element_id)
        .join(Kpi, Kpi.id == Forecast.kpi_id)
        .where(
            Forecast.element_id == element_id,
            Kpi.name == kpi,
            Forecast.is_current.is_(True),
            Forecast.granularity == granularity,
        )
        .order_by(Forecast.fitted_at.desc(), Forecast.id.desc())
        .limit(1)
    ).first()
    if found is None:
        return None
    forecast, element, kpi_row = found
    history = pd.DataFrame(
        session.execute(
            select(DailyAggregate.day, DailyAggregate.busy_hour_value)
            .where(DailyAggregate.element_id == element_id, DailyAggregate.kpi_id == kpi_row.id)
            .order_by(DailyAggregate.day)
        ).all(),
        columns=["ds", "y"],
    )
    history["ds"] = pd.to_datetime(history["ds"])
    history["y"] = history["y"].astype(float)
    points = pd.DataFrame(
        session.execute(
            select(*(getattr(ForecastPoint, c) for c in POINT_COLUMNS))
            .where(ForecastPoint.forecast_id == forecast.id)
            .order_by(ForecastPoint.ds)
        ).all(),
        columns=list(POINT_COLUMNS),
    )
    points["ds"] = pd.to_datetime(points["ds"], utc=True).dt.tz_localize(None)
    for column in POINT_COLUMNS[1:]:
        points[column] = pd.to_numeric(points[column], errors="coerce").astype(float)
    stored = session.scalar(
        select(ForecastSamples).where(ForecastSamples.forecast_id == forecast.id)
    )
    risk_row = session.scalar(select(CapacityRisk).where(CapacityRisk.forecast_id == forecast.id))
    return SeriesDetail(
        element={
            k: getattr(element, k) for k in ("id", "dn", "name", "region", "domain", "element_type")
        },
        kpi={k: getattr(kpi_row, k) for k in ("id", "name", "unit", "higher_is_worse")}
        | {"threshold": kpi_row.capacity_threshold},
        forecast=_meta(forecast),
        history=history,
        points=points,
        paths=decode_paths(stored).T.copy() if stored is not None else None,
        risk=_risk(risk_row) if risk_row is not None else None,
    )


# Paths are stored byte-shuffled (all first bytes of the float32 values, then all second
# bytes …) before zlib: the exponent bytes repeat, so level 1 compresses to about 72 % in
# a third of the time plain floats take at level 6 (about 85 %). Blobs written before the
# shuffle are plain zlib; their first byte is zlib's 0x78, never the marker's.
_SHUFFLED = b"BS1"


def encode_paths(paths: np.ndarray) -> bytes:
    """A float32 (n_paths, horizon) array in C order, byte-shuffled and zlib-compressed."""
    array = np.ascontiguousarray(paths, dtype=np.float32)
    shuffled = array.view(np.uint8).reshape(-1, 4).T.tobytes()
    return _SHUFFLED + zlib.compress(shuffled, level=1)


def decode_paths(stored: ForecastSamples) -> np.ndarray:
    """The (n_paths, horizon) float32 array a ForecastSamples row holds (either format)."""
    blob = bytes(stored.paths)
    if blob.startswith(_SHUFFLED):
        planes = np.frombuffer(zlib.decompress(blob[len(_SHUFFLED) :]), dtype=np.uint8)
        flat = planes.reshape(4, -1).T.copy().view(np.float32).ravel()
    else:
        flat = np.frombuffer(zlib.decompress(blob), dtype=np.float32)
    return flat.reshape(stored.n_paths, stored.horizon)


def _kept_paths(samples: np.ndarray | None, keep: int) -> np.ndarray | None:
    """Up to `keep` sample paths as (n_paths, horizon), evenly chosen (paths are exchangeable)."""
    thinned = thin_samples(samples, keep)  # ForecastResult.samples is (horizon, n_samples)
    return None if thinned is None else thinned.T


def _point_rows(forecast_id: int, frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Insert parameters for the forecast's points, built column-wise (one per series night)."""
    if frame is None or frame.empty:
        return []
    ds = pd.to_datetime(frame["ds"])
    ds = ds.dt.tz_localize(UTC) if ds.dt.tz is None else ds.dt.tz_convert(UTC)
    columns: list[list[Any]] = [[forecast_id] * len(frame), list(ds.dt.to_pydatetime())]
    for column in POINT_COLUMNS[1:]:
        values = (
            frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
            if column in frame
            else np.full(len(frame), np.nan)
        )
        # NULL, not NaN, for a missing trend (SQLite refuses NaN in a NOT NULL column anyway).
        finite = np.isfinite(values)
        columns.append([v if ok else None for v, ok in zip(values.tolist(), finite, strict=True)])
    keys = ("forecast_id", *POINT_COLUMNS)
    return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]


_META_FIELDS = (
    "id", "fitted_at", "granularity", "model", "model_version", "status", "status_detail",
    "backtest", "components", "changepoints", "fit_seconds", "training_start", "training_end",
    "horizon_days",
)  # fmt: skip


def _meta(forecast: Forecast) -> dict[str, Any]:
    return {name: getattr(forecast, name) for name in _META_FIELDS}


def _risk(row: CapacityRisk) -> dict[str, Any]:
    return {
        "threshold": row.threshold,
        "p_breach_30": row.p_breach_30,
        "p_breach_60": row.p_breach_60,
        "p_breach_90": row.p_breach_90,
        "breach_date": _naive(row.breach_date),
        "breach_date_low": _naive(row.breach_date_low),
        "breach_date_high": _naive(row.breach_date_high),
        "computed_at": row.computed_at,
    }


def _utc(moment: datetime | pd.Timestamp | None) -> datetime | None:
    """A naive time is taken as a UTC label (forecast days are calendar labels)."""
    if moment is None or pd.isna(moment):
        return None
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return stamp.to_pydatetime()


def _naive(moment: datetime | None) -> pd.Timestamp | None:
    return None if moment is None else pd.Timestamp(moment).tz_convert(UTC).tz_localize(None)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _jsonable(value: Any) -> Any:
    """Plain JSON types: numpy values, timestamps and non-finite floats (-> null) converted.

    orjson does the walk in C (NaN and infinities become null); anything it refuses (an
    object array, an exotic key) takes the Python walk below.
    """
    try:
        return orjson.loads(orjson.dumps(value, option=_ORJSON_OPTIONS, default=_timestamp))
    except (TypeError, orjson.JSONEncodeError):
        return _jsonable_slow(value)


_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _timestamp(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _jsonable_slow(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable_slow(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable_slow(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime | pd.Timestamp):
        return pd.Timestamp(value).isoformat()
    return value
