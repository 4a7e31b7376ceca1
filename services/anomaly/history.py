"""Loads what the detector reads: per KPI, only the lag columns it asks for.

A target period needs its own value plus the values `required_lags` steps back. Reading
just those period ends through the (kpi_id, period_end) index keeps one period's work
independent of how much history is stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.db.models import Source

# Above this many distinct period ends one range scan is cheaper than a long IN list.
MAX_IN_LIST = 400
DEFAULT_STEP = timedelta(minutes=15)
META_COLUMNS = ["element_id", "period_end", "source_id", "late", "suspect"]


@dataclass(frozen=True)
class KpiHistory:
    """One KPI's values: a matrix (element_id x period_end) and the targets' row details."""

    kpi_id: int
    matrix: pd.DataFrame
    meta: pd.DataFrame  # META_COLUMNS for the target periods only
    rows_read: int


def detection_step(session: Session) -> timedelta:
    """The period length: the shortest cadence of the enabled sources (15 min by default)."""
    seconds = session.scalar(
        select(func.min(Source.expected_cadence_s)).where(Source.enabled.is_(True))
    )
    return timedelta(seconds=int(seconds)) if seconds else DEFAULT_STEP


def needed_periods(
    targets: Sequence[datetime], lags: Iterable[int], step: timedelta
) -> list[datetime]:
    """Every period end the targets and their lags touch, sorted."""
    lag_list = sorted({int(lag) for lag in lags})
    wanted = {t for t in targets}
    for target in targets:
        wanted.update(target - step * lag for lag in lag_list)
    return sorted(wanted)


def load_lags(
    session: Session,
    *,
    kpi_id: int,
    targets: Sequence[datetime],
    lags: Iterable[int],
    step: timedelta,
    element_ids: Sequence[int] | None = None,
) -> KpiHistory:
    """The KPI's current values at the targets and their lag periods (NaN where missing)."""
    periods = needed_periods(targets, lags, step)
    if not periods:
        return _empty(kpi_id)
    if len(periods) <= MAX_IN_LIST:
        frame = _read(session, kpi_id=kpi_id, periods=periods, element_ids=element_ids)
    else:
        frame = _read(
            session, kpi_id=kpi_id, span=(periods[0], periods[-1]), element_ids=element_ids
        )
        if len(frame):
            frame = frame[frame["period_end"].isin(pd.DatetimeIndex(periods))]
    return _shape(kpi_id, frame, targets)


def load_range(
    session: Session,
    *,
    kpi_id: int,
    start: datetime,
    end: datetime,
    targets: Sequence[datetime],
) -> KpiHistory:
    """Every stored value of the KPI in [start, end] (the naive loader benchmarks compare)."""
    return _shape(kpi_id, _read(session, kpi_id=kpi_id, span=(start, end)), targets)


def _read(
    session: Session,
    *,
    kpi_id: int,
    periods: Sequence[datetime] | None = None,
    span: tuple[datetime, datetime] | None = None,
    element_ids: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Current rows of one KPI at the given periods (or in a span), as a frame.

    Reads through the driver's own cursor: at tens of thousands of rows per KPI the
    per-row work of SQLAlchemy's result objects costs several times the query itself.
    """
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"

    def bind(moment: datetime) -> object:
        # SQLite stores naive UTC text (see UTCDateTime); PostgreSQL takes aware datetimes.
        utc = moment.astimezone(UTC)
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else utc

    # Only placeholders are interpolated; every value travels as a bound parameter.
    sql = (
        "SELECT element_id, period_end, value, source_id, late, suspect FROM measurements "  # noqa: S608
        f"WHERE kpi_id = {mark} AND superseded = {mark}"
    )
    params: list[object] = [int(kpi_id), False]
    if periods is not None:
        sql += f" AND period_end IN ({', '.join([mark] * len(periods))})"
        params += [bind(p) for p in periods]
    if span is not None:
        sql += f" AND period_end >= {mark} AND period_end <= {mark}"
        params += [bind(span[0]), bind(span[1])]
    if element_ids is not None:
        sql += f" AND element_id IN ({', '.join([mark] * len(element_ids))})"
        params += [int(e) for e in element_ids]
    raw = connection.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    names = ["element_id", "period_end", "value", "source_id", "late", "suspect"]
    if not rows:
        return pd.DataFrame(columns=names)
    columns = list(zip(*rows, strict=True))
    return pd.DataFrame(
        {
            "element_id": np.asarray(columns[0], dtype=np.int64),
            "period_end": _timestamps(columns[1]),
            "value": np.asarray(columns[2], dtype=np.float64),
            "source_id": np.asarray(columns[3], dtype=np.float64),  # None -> NaN
            "late": np.asarray(columns[4], dtype=bool),
            "suspect": np.asarray(columns[5], dtype=bool),
        }
    )


def _timestamps(values: tuple) -> pd.Series:  # type: ignore[type-arg]
    """UTC timestamps from SQLite text or PostgreSQL datetimes."""
    series = pd.Series(values)
    if isinstance(values[0], str):
        return pd.to_datetime(series, utc=True, format="ISO8601")
    return pd.to_datetime(series, utc=True)


def _shape(kpi_id: int, frame: pd.DataFrame, targets: Sequence[datetime]) -> KpiHistory:
    if frame.empty:
        return _empty(kpi_id, rows=0)
    # Only one current revision exists per key; keep the last defensively all the same.
    frame = frame.drop_duplicates(["element_id", "period_end"], keep="last")
    matrix = frame.pivot(index="element_id", columns="period_end", values="value").astype(float)
    target_index = pd.DatetimeIndex(pd.to_datetime(list(targets), utc=True))
    meta = frame.loc[frame["period_end"].isin(target_index), META_COLUMNS].reset_index(drop=True)
    return KpiHistory(kpi_id=kpi_id, matrix=matrix, meta=meta, rows_read=len(frame))


def _empty(kpi_id: int, rows: int = 0) -> KpiHistory:
    return KpiHistory(
        kpi_id=kpi_id,
        matrix=pd.DataFrame(dtype=float),
        meta=pd.DataFrame(columns=META_COLUMNS),
        rows_read=rows,
    )
